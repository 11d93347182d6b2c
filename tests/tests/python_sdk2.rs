//! The official Python SDK 2.x (PyPI `mcp==2.3.0`, in the virtualenv `.venv-mcp2` that
//! scripts/test.sh makes) as a client (issue 17, MCP 2026-07-28).
//!
//! In its default `auto` mode the SDK probes `server/discover` and speaks 2026-07-28 with
//! conformance-server: a tool that needs the client's sampling or elicitation is answered with an
//! input-required result, which the SDK fulfils through its callbacks and retries with
//! `inputResponses` and the `requestState` — over streamable HTTP and over stdio. Pinned to
//! 2025-11-25 (`mode="legacy"`: the `initialize` handshake), the same tools, and the 2025 ones,
//! ask by real server-to-client requests. `python/sdk2_session.py` taps the SDK's transport and
//! reports the messages that went over the wire, which the tests check.
//!
//! And the SDK 2.x's legacy HTTP+SSE client (`sse_client`), as `sse.rs` drives the 1.x one:
//! against bioseq and through a bridge.

use std::time::Duration;

use mcp_expose_tests::{
    PYTHON_SDK2_VERSION, ServerProcess, assert_gc_ggccat, bin, python_script, python_sdk2,
};
use serde_json::{Value, json};

/// Runs `python/SCRIPT ARGS...` with the SDK 2.x's Python (at most 60 s): its one JSON line.
async fn run(script: &str, args: &[String]) -> Value {
    let mut command = tokio::process::Command::new(python_sdk2());
    command
        .arg(python_script(script))
        .args(args)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .unwrap_or_else(|_| panic!("{script} {args:?} ends within 60 s"))
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} {args:?}: {stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{script} {args:?}: {e}: {stderr}"))
}

/// Where the SDK finds conformance-server.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// Its streamable HTTP URL.
    Http(&'a str),
    /// A child the SDK spawns and speaks to over stdio.
    Stdio,
}

/// One `sdk2_session.py` session in `mode` (`auto` or `legacy`) calling `tool`.
async fn session(mode: &str, target: Target<'_>, tool: &str, arguments: &Value) -> Value {
    let mut args = vec![mode.to_owned(), tool.to_owned(), arguments.to_string()];
    match target {
        Target::Http(url) => args.push(url.to_owned()),
        Target::Stdio => {
            args.push("--".to_owned());
            args.push(bin("conformance-server").display().to_string());
        }
    }
    let result = run("sdk2_session.py", &args).await;
    assert_eq!(result["sdk"], PYTHON_SDK2_VERSION, "{result}");
    assert_eq!(result["server"], "conformance-server", "{result}");
    assert_eq!(result["is_error"], false, "{result}");
    result
}

/// A tool that needs the client, and what it makes of the callback's answer.
struct Case {
    tool: &'static str,
    arguments: Value,
    /// `sampling` or `elicitation`: the callback that must answer.
    kind: &'static str,
    /// The method of the request the server makes.
    method: &'static str,
    /// What the server asks (the prompt, or the elicitation message).
    asked: &'static str,
    /// The tool's text, from the callback's answer.
    expected: fn(&Value) -> String,
}

fn input_required_cases() -> [Case; 2] {
    [
        Case {
            tool: "test_input_required_result_elicitation",
            arguments: json!({}),
            kind: "elicitation",
            method: "elicitation/create",
            asked: "What is your name?",
            // The form's field `name`, as JSON.
            expected: |answer| format!("Hello, {}!", answer["name"]),
        },
        Case {
            tool: "test_input_required_result_sampling",
            arguments: json!({}),
            kind: "sampling",
            method: "sampling/createMessage",
            asked: "What is the capital of France?",
            expected: |answer| format!("LLM response: {}", answer.as_str().expect("a text")),
        },
    ]
}

/// The 2025 tools of conformance-server that ask the client.
fn request_cases() -> [Case; 2] {
    [
        Case {
            tool: "test_sampling",
            arguments: json!({ "prompt": "Name a prime above 10" }),
            kind: "sampling",
            method: "sampling/createMessage",
            asked: "Name a prime above 10",
            expected: |answer| format!("LLM response: {}", answer.as_str().expect("a text")),
        },
        Case {
            tool: "test_elicitation",
            arguments: json!({ "message": "Who is asking?" }),
            kind: "elicitation",
            method: "elicitation/create",
            asked: "Who is asking?",
            expected: |answer| format!("User response: action=accept, content={answer}"),
        },
    ]
}

/// The one callback the session ran: it is `case`'s, it was asked what the tool asks, and the
/// tool returned what it answered. Returns its request id.
fn the_callback(result: &Value, case: &Case) -> Value {
    let callbacks = result["callbacks"].as_array().expect("callbacks");
    assert_eq!(callbacks.len(), 1, "{result}");
    let callback = &callbacks[0];
    assert_eq!(callback["kind"], case.kind, "{result}");
    assert_eq!(callback["asked"], json!([case.asked]), "{result}");
    let text = (case.expected)(&callback["answer"]);
    assert_eq!(result["text"], json!([text]), "{result}");
    callback["request_id"].clone()
}

fn wire(result: &Value) -> &Vec<Value> {
    result["wire"].as_array().expect("the wire")
}

/// The message that went `dir` (`in`, `out`) with `id` and no method (a response).
fn response<'a>(result: &'a Value, dir: &str, id: &Value) -> &'a Value {
    wire(result)
        .iter()
        .find(|m| m["dir"] == dir && m["id"] == *id && m.get("method").is_none())
        .unwrap_or_else(|| panic!("no response {dir} to {id}: {result}"))
}

/// `auto` mode at 2026-07-28: `server/discover`, no handshake, no server-to-client request; the
/// call answered `input_required` with one input request (the callback's key), retried with its
/// response and the `requestState`, and completed.
async fn auto_mode_fulfils_input_required_results(target: Target<'_>) {
    for case in input_required_cases() {
        let result = session("auto", target, case.tool, &case.arguments).await;
        assert_eq!(result["protocol"], "2026-07-28", "{result}");
        let key = the_callback(&result, &case);
        assert!(
            key.is_string(),
            "the callback ran for an input request: {result}"
        );
        let wire = wire(&result);
        assert_eq!(wire[0]["dir"], "out", "{result}");
        assert_eq!(wire[0]["method"], "server/discover", "{result}");
        assert!(
            !wire.iter().any(|m| m["method"] == "initialize"),
            "{result}"
        );
        assert!(
            !wire
                .iter()
                .any(|m| m["dir"] == "in" && m.get("method").is_some()),
            "no server-to-client message on 2026-07-28: {result}"
        );
        let calls: Vec<&Value> = wire
            .iter()
            .filter(|m| m["dir"] == "out" && m["method"] == "tools/call")
            .collect();
        assert_eq!(calls.len(), 2, "one call and one retry: {result}");
        assert!(calls.iter().all(|c| c["name"] == case.tool), "{result}");
        let (first, retry) = (calls[0], calls[1]);
        assert!(first.get("inputResponses").is_none(), "{result}");
        assert!(first.get("requestState").is_none(), "{result}");
        let asked = response(&result, "in", &first["id"]);
        assert_eq!(asked["resultType"], "input_required", "{result}");
        let mut requests = serde_json::Map::new();
        requests.insert(key.as_str().expect("a key").to_owned(), json!(case.method));
        assert_eq!(asked["inputRequests"], Value::Object(requests), "{result}");
        assert_eq!(asked["requestState"], true, "{result}");
        assert_ne!(retry["id"], first["id"], "{result}");
        assert_eq!(retry["inputResponses"], json!([key]), "{result}");
        assert_eq!(retry["requestState"], true, "{result}");
        let done = response(&result, "in", &retry["id"]);
        assert_eq!(done["resultType"], "complete", "{result}");
    }
}

/// `legacy` mode: the `initialize` handshake at 2025-11-25, and the server asks by a real
/// request, which the callback answered; no input-required result anywhere.
async fn a_2025_session_answers_real_requests(target: Target<'_>) {
    for case in input_required_cases().into_iter().chain(request_cases()) {
        let result = session("legacy", target, case.tool, &case.arguments).await;
        assert_eq!(result["protocol"], "2025-11-25", "{result}");
        let id = the_callback(&result, &case);
        let wire = wire(&result);
        assert_eq!(wire[0]["method"], "initialize", "{result}");
        assert_eq!(wire[0]["protocolVersion"], "2025-11-25", "{result}");
        assert!(
            !wire.iter().any(|m| m["method"] == "server/discover"
                || m["resultType"] == "input_required"
                || m.get("inputResponses").is_some()),
            "{result}"
        );
        let request = wire
            .iter()
            .find(|m| m["dir"] == "in" && m.get("method").is_some())
            .unwrap_or_else(|| panic!("a server-to-client request: {result}"));
        assert_eq!(request["method"], case.method, "{result}");
        assert_eq!(
            request["id"], id,
            "the callback answered that request: {result}"
        );
        let answered = response(&result, "out", &id);
        assert!(answered.get("error").is_none(), "{result}");
        let call = wire
            .iter()
            .find(|m| m["dir"] == "out" && m["method"] == "tools/call")
            .expect("the call");
        assert_eq!(call["name"], case.tool, "{result}");
        response(&result, "in", &call["id"]);
    }
}

#[tokio::test]
async fn sdk2_auto_mode_fulfils_input_required_results_over_streamable_http() {
    let server = ServerProcess::start("conformance-server", &["--http", "0"]).await;
    auto_mode_fulfils_input_required_results(Target::Http(server.http())).await;
}

#[tokio::test]
async fn sdk2_auto_mode_fulfils_input_required_results_over_stdio() {
    auto_mode_fulfils_input_required_results(Target::Stdio).await;
}

#[tokio::test]
async fn sdk2_pinned_to_2025_answers_real_requests_over_streamable_http() {
    let server = ServerProcess::start("conformance-server", &["--http", "0"]).await;
    a_2025_session_answers_real_requests(Target::Http(server.http())).await;
}

#[tokio::test]
async fn sdk2_pinned_to_2025_answers_real_requests_over_stdio() {
    a_2025_session_answers_real_requests(Target::Stdio).await;
}

/// The origin (`http://127.0.0.1:PORT`) of a server's streamable HTTP URL.
fn origin(server: &ServerProcess) -> String {
    let url = server.http();
    let path = url["http://".len()..].find('/').expect("a path");
    url[.."http://".len() + path].to_owned()
}

/// `python/sse_session2.py`: the SDK 2.x's `sse_client` session, its one JSON line.
async fn sse_session(url: &str, tool: &str, arguments: &Value) -> Value {
    let args = [url.to_owned(), tool.to_owned(), arguments.to_string()];
    let result = run("sse_session2.py", &args).await;
    assert_eq!(result["sdk"], PYTHON_SDK2_VERSION, "{result}");
    assert_eq!(result["is_error"], false, "{result}");
    result
}

#[tokio::test]
async fn the_python_sdk2_sse_client_lists_and_calls_a_served_server() {
    let server = ServerProcess::start("bioseq", &["--http", "0"]).await;
    let url = format!("{}/sse", origin(&server));
    let result = sse_session(&url, "gc_content", &json!({ "seq": "GGCCAT" })).await;
    assert_eq!(result["server"], "bioseq", "{result}");
    let tools = result["tools"].to_string();
    for tool in ["gc_content", "reverse_complement", "translate"] {
        assert!(tools.contains(tool), "{result}");
    }
    assert_gc_ggccat(result["structured"]["result"].as_f64().expect("a number"));
}

#[tokio::test]
async fn the_python_sdk2_sse_client_through_a_bridge() {
    let child = mcp_expose_tests::python_server("child_server.py");
    let bridged = ServerProcess::start(
        "mcp-expose",
        &["bridge", "--http", "0", "--", "python3", &child],
    )
    .await;
    let url = format!("{}/sse", origin(&bridged));
    let result = sse_session(&url, "echo", &json!({ "text": "through sse, sdk 2" })).await;
    assert_eq!(result["server"], "py-child", "{result}");
    assert!(result["tools"].to_string().contains("echo"), "{result}");
    assert_eq!(result["text"], json!(["through sse, sdk 2"]), "{result}");
}
