//! The bridge's streamable HTTP streams under a client that reads too slowly (issue 15, item 3):
//! its stream is bounded in bytes and cut once its unread messages pass the bound: it ends,
//! instead of skipping messages or losing its answer and staying open on keep-alives, and
//! every other session is served meanwhile. Both child models.

use std::time::Duration;

use mcp_expose_tests::{
    ServerProcess, initialize, initialized, python_server, request, response_messages, session_id,
    tool_call as call,
};
use serde_json::{Value, json};

fn post(url: &str, body: String, session: Option<&str>) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request
}

async fn session(url: &str) -> String {
    let response = post(url, initialize(0, json!({})), None)
        .send()
        .await
        .expect("initialize");
    let session = session_id(&response);
    let init = response_messages(response).await;
    assert!(init[0]["result"]["serverInfo"].is_object(), "{init:?}");
    post(url, initialized(), Some(&session))
        .send()
        .await
        .expect("initialized");
    session
}

/// The progress values, in order, of the event stream `text`, and whether its answer came.
fn progress_of(text: &str) -> (Vec<u64>, bool) {
    let mut progress = Vec::new();
    let mut answered = false;
    for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let Ok(message) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        match message["params"]["progress"].as_u64() {
            Some(n) => progress.push(n),
            None => answered |= message.get("result").is_some(),
        }
    }
    (progress, answered)
}

async fn a_post_whose_client_reads_too_slowly_is_cut(child: &str) {
    let script = python_server("shared_child.py");
    let args = [
        "bridge", "--child", child, "--http", "0", "--", "python3", &script,
    ];
    let mut server = ServerProcess::start("mcp-expose", &args).await;
    let url = server.http().to_owned();
    let slow = session(&url).await;
    let honest = session(&url).await;
    // 50 MiB of progress, far past what the kernel's socket buffers and the stream's bound
    // hold together, for a client that reads at 1 MB/s (it would take 50 s to read it all).
    const FLOOD: u64 = 200;
    let flood = json!({ "name": "flood", "arguments": { "count": FLOOD, "size": 256 * 1024 },
        "_meta": { "progressToken": "slow" } });
    let mut flooded = post(&url, request(1, "tools/call", flood), Some(&slow))
        .send()
        .await
        .expect("the flood's head");
    assert!(
        flooded.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/event-stream")),
        "{:?}",
        flooded.headers()
    );
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        let ended = tokio::time::timeout(Duration::from_secs(40), async {
            while let Ok(Some(chunk)) = flooded.chunk().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                tokio::time::sleep(Duration::from_micros(chunk.len() as u64)).await;
            }
        })
        .await;
        (ended.is_ok(), text)
    });
    // Every other session is served while the stream fills.
    for id in 2..12 {
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            post(
                &url,
                call(id, "echo", json!({ "text": "hi" })),
                Some(&honest),
            )
            .send(),
        )
        .await
        .expect("an honest call waited 5 s behind the slow client")
        .expect("an answer");
        let messages = response_messages(answer).await;
        assert_eq!(messages[0]["result"]["content"][0]["text"], "hi");
    }
    // The stream ends, having delivered an unbroken run of messages.
    const CUT: &str = "whose client stopped reading";
    let (ended, text) = reader.await.expect("the reader");
    assert!(ended, "the slow stream was still open after 40 s");
    let (progress, answered) = progress_of(&text);
    let expected: Vec<u64> = (1..=progress.len() as u64).collect();
    assert!(
        progress == expected,
        "the stream skipped messages instead of ending: {:?}..",
        &progress[..progress.len().min(40)]
    );
    assert!(!answered, "the cut stream still carried its answer");
    assert!(
        (progress.len() as u64) < FLOOD,
        "all {} messages arrived: the stream was never cut",
        progress.len()
    );
    let _ = server.line_containing(CUT, Duration::from_secs(5)).await;
    assert!(
        server.logged(CUT),
        "the bridge did not say it cut the stream; log:\n{}",
        server.log.join("\n")
    );
    // The session itself goes on.
    let answer = post(
        &url,
        call(99, "echo", json!({ "text": "again" })),
        Some(&slow),
    )
    .send()
    .await
    .expect("an answer");
    let messages = response_messages(answer).await;
    assert_eq!(
        messages,
        [messages[messages.len() - 1].clone()],
        "only its answer"
    );
    assert_eq!(messages[0]["result"]["content"][0]["text"], "again");
}

#[tokio::test]
async fn per_session_a_post_whose_client_reads_too_slowly_is_cut() {
    a_post_whose_client_reads_too_slowly_is_cut("per-session").await;
}

#[tokio::test]
async fn shared_a_post_whose_client_reads_too_slowly_is_cut() {
    a_post_whose_client_reads_too_slowly_is_cut("shared").await;
}
