//! A hostile client against the real `bioseq` binary: rate limits that a made-up header cannot
//! dodge, sessions that only their opener can use, and Host headers that are no host.

use mcp_expose_tests::{ServerProcess, initialize, initialized, request, session_id};
use serde_json::json;

const TOKEN_A: &str = "hostile-token-a-0123456789";
const TOKEN_B: &str = "hostile-token-b-9876543210";

fn token_file() -> String {
    let dir = std::env::temp_dir().join(format!("mcp-expose-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("tokens");
    std::fs::write(&file, format!("{TOKEN_A}\n{TOKEN_B}\n")).expect("tokens");
    file.display().to_string()
}

fn post(url: &str, authorization: Option<&str>, body: String) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    match authorization {
        Some(value) => request.header("authorization", value),
        None => request,
    }
}

/// How many of `n` initialize requests got through (200), each with the header `header(i)`.
async fn admitted(url: &str, n: usize, header: impl Fn(usize) -> String) -> usize {
    let mut ok = 0;
    for i in 0..n {
        let response = post(url, Some(&header(i)), initialize(1, json!({})))
            .send()
            .await
            .expect("request");
        ok += usize::from(response.status() == 200);
    }
    ok
}

#[tokio::test]
async fn a_made_up_header_per_request_does_not_dodge_the_rate_limit() {
    // No auth: a fresh Authorization header each time must not make a fresh client.
    let open = ServerProcess::start("bioseq", &["--http", "0", "--rate-limit", "3"]).await;
    let through = admitted(open.http(), 40, |i| format!("Bearer made-up-{i}")).await;
    assert!(
        through <= 10,
        "{through} of 40 got through a limit of 3 a second"
    );

    // With auth: the same token spelled `bearer`, `BEARER`, ... is the same caller.
    let tokens = token_file();
    let guarded = ServerProcess::start(
        "bioseq",
        &[
            "--http",
            "0",
            "--rate-limit",
            "3",
            "--auth-token-file",
            &tokens,
        ],
    )
    .await;
    let spellings = ["Bearer", "bearer", "BEARER", "bEaReR", "BeArEr"];
    let through = admitted(guarded.http(), 40, |i| {
        format!("{} {TOKEN_A}", spellings[i % spellings.len()])
    })
    .await;
    assert!(
        through <= 10,
        "{through} of 40 got through a limit of 3 a second"
    );
}

#[tokio::test]
async fn a_session_belongs_to_the_token_that_opened_it() {
    let tokens = token_file();
    let server =
        ServerProcess::start("bioseq", &["--http", "0", "--auth-token-file", &tokens]).await;
    let url = server.http();
    let (a, b) = (format!("Bearer {TOKEN_A}"), format!("Bearer {TOKEN_B}"));
    let opened = post(url, Some(&a), initialize(1, json!({})))
        .send()
        .await
        .expect("initialize");
    assert_eq!(opened.status(), 200);
    let session = session_id(&opened);
    let _ = opened.text().await;
    let with =
        |token: &str, body: String| post(url, Some(token), body).header("mcp-session-id", &session);
    assert_eq!(
        with(&a, initialized())
            .send()
            .await
            .expect("initialized")
            .status(),
        202
    );

    // Another valid token can neither use the session nor end it.
    let used = with(&b, request(2, "tools/list", json!({})))
        .send()
        .await
        .expect("tools/list");
    assert_eq!(used.status(), 404, "token B used token A's session");
    let ended = reqwest::Client::new()
        .delete(url)
        .header("authorization", &b)
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("delete");
    assert_eq!(ended.status(), 404, "token B ended token A's session");

    // Its opener still can.
    let listed = with(&a, request(3, "tools/list", json!({})))
        .send()
        .await
        .expect("tools/list");
    assert_eq!(listed.status(), 200);
    assert!(listed.text().await.expect("body").contains("gc_content"));
}

/// `127.0.0.1:PORT` of `server`'s HTTP listener.
fn host_and_port(server: &ServerProcess) -> String {
    server
        .http()
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned()
}

/// The status line of a raw HTTP/1.1 request (a client library would not send these heads).
async fn raw_status(addr: &str, head: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("an answer within 10 s")
        .expect("read");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn hosts_that_are_no_host_get_400() {
    let server = ServerProcess::start("bioseq", &["--http", "0"]).await;
    let addr = host_and_port(&server);
    let body = initialize(1, json!({}));
    let head = |hosts: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\n{hosts}Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let twice = raw_status(
        &addr,
        &head("Host: localhost\r\nHost: evil.example.com\r\n"),
    )
    .await;
    assert!(twice.contains(" 400 "), "two Host headers: {twice}");
    let glued = raw_status(&addr, &head("Host: [::1]evil\r\n")).await;
    assert!(glued.contains(" 400 "), "Host: [::1]evil: {glued}");
    let fine = raw_status(&addr, &head("Host: localhost\r\n")).await;
    assert!(fine.contains(" 200 "), "{fine}");
}

/// A TCP connection to `addr` from the loopback address `from` (127.0.0.1 and ::1 speak for
/// many clients and are not counted per address; 127.0.0.2 and up are one client each).
async fn connect_from(from: &str, addr: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("from"))
        .expect("bind the source address");
    socket
        .connect(addr.parse().expect("addr"))
        .await
        .expect("connect")
}

/// Whether the server closes `tcp` (EOF or reset) within `limit`, reading what it sends.
async fn closed_within(tcp: &mut tokio::net::TcpStream, limit: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn silent_and_trickling_connections_are_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt as _;
    let bioseq = mcp_expose_tests::bin("bioseq").display().to_string();
    let direct =
        ServerProcess::start("bioseq", &["--http", "0", "--header-read-timeout", "2"]).await;
    let bridged = ServerProcess::start(
        "mcp-expose",
        &[
            "bridge",
            "--http",
            "0",
            "--header-read-timeout",
            "2",
            "--",
            &bioseq,
        ],
    )
    .await;
    for server in [&direct, &bridged] {
        let addr = server
            .http()
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
            .to_owned();
        let mut silent = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let mut trickling = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let trickle = async {
            // One byte of a request head every 500 ms: never a whole head.
            for byte in b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
                .iter()
                .cycle()
                .take(40)
            {
                if trickling.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        };
        let limit = std::time::Duration::from_secs(8);
        let (silent_closed, ()) = tokio::join!(closed_within(&mut silent, limit), trickle);
        assert!(
            silent_closed,
            "{}: a silent connection stayed open",
            server.http()
        );
        assert!(
            closed_within(&mut trickling, std::time::Duration::from_secs(1)).await,
            "{}: a trickling connection stayed open",
            server.http()
        );
        // An honest client is served meanwhile and after.
        let response = post(server.http(), None, initialize(1, json!({})))
            .send()
            .await
            .expect("initialize");
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn connections_are_capped_per_client_and_in_all_and_freed_on_close() {
    let server = ServerProcess::start(
        "bioseq",
        &[
            "--http",
            "0",
            "--max-connections",
            "12",
            "--max-connections-per-client",
            "4",
        ],
    )
    .await;
    let addr = host_and_port(&server);
    // One client address: four connections, then a refusal read at once.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from("127.0.0.2", &addr).await);
    }
    let mut fifth = connect_from("127.0.0.2", &addr).await;
    assert!(
        closed_within(&mut fifth, std::time::Duration::from_secs(5)).await,
        "a fifth connection from one address was held"
    );
    // Others are served; then the cap in all: 12 connections, the 13th refused.
    for from in ["127.0.0.3", "127.0.0.4"] {
        for _ in 0..4 {
            held.push(connect_from(from, &addr).await);
        }
    }
    let mut over = connect_from("127.0.0.5", &addr).await;
    assert!(
        closed_within(&mut over, std::time::Duration::from_secs(5)).await,
        "a 13th connection was held"
    );
    // Closing frees the slots: an honest client is served again.
    held.clear();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let response = post(server.http(), None, initialize(1, json!({})))
            .send()
            .await;
        if response.as_ref().is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not served after the others closed: {response:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Item 5, over HTTP: a client that asks for a long answer and never reads it has its
/// connection closed once it has taken nothing for `--write-timeout`, so what waited for it is
/// freed, instead of being held for as long as the client keeps the socket open.
#[tokio::test]
async fn a_client_that_stops_reading_a_response_is_disconnected() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let args = ["--http", "0", "--stateless", "--write-timeout", "2"];
    let server = ServerProcess::start("bioseq", &args).await;
    let addr = host_and_port(&server);
    // A 12 MB answer: more than the kernel's socket buffers on both sides hold.
    const BASES: usize = 12 * 1024 * 1024;
    let sequence = "ACGT".repeat(BASES / 4);
    let body = request(
        1,
        "tools/call",
        json!({ "name": "reverse_complement", "arguments": { "seq": sequence } }),
    );
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut tcp = socket
        .connect(addr.parse().expect("addr"))
        .await
        .expect("connect");
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    tcp.write_all(body.as_bytes()).await.expect("body");
    // Reads nothing for well past the write timeout; others are served meanwhile.
    for _ in 0..6 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let health = reqwest::get(server.http().replace("/mcp", "/health"))
            .await
            .expect("health");
        assert_eq!(health.status(), 200);
    }
    // Reading now: what the kernel had buffered, then the end; never the whole answer.
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received += n,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the connection stayed open: {received} bytes read, the server kept waiting on a client that did not read"
    );
    assert!(
        received < BASES,
        "the whole answer ({received} bytes) arrived: the connection was never closed"
    );
}

/// One whole HTTP/1.1 response from `tcp` (its head, lower-cased, and its body), or `None` if
/// the server closed the connection first.
async fn read_response(tcp: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("a length"));
            if buf.len() >= end + 4 + length {
                return Some((head, buf[end + 4..end + 4 + length].to_vec()));
            }
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, tcp.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
        {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn a_refused_request_leaves_its_connection_usable_or_says_it_closes() {
    use tokio::io::AsyncWriteExt as _;
    let tokens = token_file();
    let server =
        ServerProcess::start("bioseq", &["--http", "0", "--auth-token-file", &tokens]).await;
    let addr = host_and_port(&server);
    let body = initialize(1, json!({}));
    let head = |length: usize| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    // The body comes after the head, as clients that write them apart send it: the 401 is
    // decided before it arrives, and the connection must still take the next request (the
    // MCP SDKs' OAuth discovery sends its metadata GET on it).
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    tcp.write_all(head(body.len()).as_bytes())
        .await
        .expect("head");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tcp.write_all(body.as_bytes()).await.expect("body");
    let (refused, error) = read_response(&mut tcp).await.expect("a 401");
    assert!(refused.starts_with("http/1.1 401"), "{refused}");
    assert!(!refused.contains("connection: close"), "{refused}");
    let error: serde_json::Value = serde_json::from_slice(&error).expect("a JSON body");
    assert!(error["error"]["message"].is_string(), "{error}");
    // A closed connection fails the write or the read: either way no answer.
    let _ = tcp
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let (health, _) = read_response(&mut tcp)
        .await
        .expect("the next request on the same connection is answered");
    assert!(health.starts_with("http/1.1 200"), "{health}");

    // A body too large to read is not waited for: the refusal says the connection closes, so
    // no client sends its next request into a closing socket.
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    tcp.write_all(head(50 << 20).as_bytes())
        .await
        .expect("head");
    tcp.write_all(&[b' '; 1 << 16]).await.expect("part");
    let (refused, _) = read_response(&mut tcp).await.expect("a 401");
    assert!(refused.starts_with("http/1.1 401"), "{refused}");
    assert!(refused.contains("connection: close"), "{refused}");
}
