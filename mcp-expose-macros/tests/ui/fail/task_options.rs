/// Doc.
#[mcp_expose::tool(task = "sometimes")]
async fn bad_support() -> String { String::new() }

/// Doc.
#[mcp_expose::tool(task_start = "explicit")]
async fn start_without_task() -> String { String::new() }

/// Doc.
#[mcp_expose::tool(task = "required", task_start = "explicit")]
async fn explicit_without_context() -> String { String::new() }

fn main() {}
