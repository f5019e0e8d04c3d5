"""Forty-odd short texts written for the encoder-equivalence test (queries, tool texts, odd inputs)."""

LONG_TEXT = " ".join(
    f"Step {i}: open the quarterly spreadsheet, copy the totals for region {i} into the summary sheet, and check "
    "that the currency column uses euros before saving."
    for i in range(1, 9)
)

REFERENCE_TEXTS: list[str] = [
    "list my storage accounts",
    "Send an email to the team about tomorrow's standup",
    "create a new calendar event for Friday at 3pm",
    "What is the weather like in Lisbon this weekend?",
    "convert the word document to pdf",
    "draw a bar chart of monthly sales",
    "search the web for recent papers on protein folding",
    "read_file: Read the complete contents of a file from the file system.",
    "write file write content to a file path overwrite",
    "get current stock price for a ticker symbol",
    "geocode address convert an address into latitude and longitude",
    "find parking facilities near a location",
    "Translate this paragraph into Japanese.",
    "kubernetes cluster list: List AKS clusters in a subscription.",
    "Show me the secrets stored in my key vault",
    "delete the branch feature/login from the repository",
    "open a pull request with my changes",
    "summarise the transcript of a YouTube video",
    "Generate a word cloud from the text",
    "beat tracking, MFCC extraction and chroma CQT for an audio file",
    "What's trending on Weibo right now?",
    "book a table for two at an Italian restaurant",
    "query the sales database for last month's revenue",
    "run a shell command and return its output",
    "take a screenshot of the web page",
    "fetch a URL and return the page as markdown",
    "create_document: Create a new Word document with optional metadata",
    "add_paragraph document_path text style",
    "How many tokens does this prompt use?",
    "a",
    "",
    "12345 67890",
    "Emoji test 🚀 with rocket and CAFÉ accents naïve",
    "数据分析和可视化工具",
    "使用必应搜索指定的关键词",
    "SELECT * FROM users WHERE id = 42;",
    "https://example.com/path?query=1&b=2",
    "CamelCaseToolNameWithManyParts and snake_case_tool_name",
    "The quick brown fox jumps over the lazy dog.",
    "retry-max-retries: Maximum number of retry attempts for failed operations before giving up.",
    "Get best practices for building AI applications in Azure",
    LONG_TEXT,
]
