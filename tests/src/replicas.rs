//! The replicas rig (issue 18): `scripts/replicas.sh` (nginx round-robin in front of three
//! `conformance-server` replicas sharing a Redis) and what the tests read from it.

use std::time::Duration;

use serde_json::Value;

/// `scripts/replicas.sh`: nginx (from `--print-nginx-config`) in front of three replicas of
/// `conformance-server` sharing a Redis, all on free loopback ports; stopped (SIGTERM, which
/// stops what it started) when dropped.
#[derive(Debug)]
pub struct Rig {
    /// nginx's MCP endpoint.
    pub front: String,
    /// The replicas, `127.0.0.1:PORT` each.
    pub replicas: Vec<String>,
    _stop: Stop,
}

impl Rig {
    /// Starts the rig (60 s at most).
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/replicas.sh");
        let server = crate::bin("conformance-server");
        let mut rig = tokio::process::Command::new("bash")
            .arg(script)
            .arg(server)
            .arg(port.to_string())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("scripts/replicas.sh runs");
        // SIGTERM (also on a failed assertion), so that it stops what it started.
        let stop = Stop(rig.id().expect("a pid"));
        // Its line naming the replicas, within 60 s.
        let stderr = rig.stderr.take().expect("stderr");
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
        let line = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("in front of") {
                    return line;
                }
            }
            panic!("scripts/replicas.sh ended without starting");
        })
        .await
        .expect("the rig within 60 s");
        let replicas: Vec<String> = line
            .split("in front of ")
            .nth(1)
            .and_then(|rest| rest.split(", Redis").next())
            .expect("replicas")
            .split(' ')
            .map(str::to_owned)
            .collect();
        assert_eq!(replicas.len(), 3, "{line}");
        Self {
            front: format!("http://127.0.0.1:{port}/mcp"),
            replicas,
            _stop: stop,
        }
    }

    /// POSTs `body` through nginx, in `session` (2025-11-25) when given (20 s).
    pub fn post(
        &self,
        client: &reqwest::Client,
        body: String,
        session: Option<&str>,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + use<> {
        post(client, &self.front, body, session)
    }

    /// Opens `session`'s GET stream through nginx (2025-11-25), resuming after `last` when
    /// given (read within 120 s); asserts it is answered 2xx.
    pub async fn get(
        &self,
        client: &reqwest::Client,
        session: &str,
        last: Option<&str>,
    ) -> reqwest::Response {
        let mut request = client
            .get(&self.front)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25")
            .timeout(Duration::from_secs(120));
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        let response = request.send().await.expect("GET");
        assert!(response.status().is_success(), "{}", response.status());
        response
    }

    /// How many `method` requests over HTTP each replica served.
    pub async fn served(&self, method: &str) -> Vec<f64> {
        let mut counts = Vec::new();
        for replica in &self.replicas {
            let metrics = reqwest::get(format!("http://{replica}/metrics"))
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            counts.push(crate::sample(
                &metrics,
                "mcp_requests_total",
                &["transport=\"http\"", &format!("method=\"{method}\"")],
            ));
        }
        counts
    }
}

/// Sends SIGTERM to the rig when dropped.
#[derive(Debug)]
struct Stop(u32);

impl Drop for Stop {
    fn drop(&mut self) {
        crate::kill("-TERM", self.0);
    }
}

/// The events of an SSE text: each one's `id` and its JSON `data` (priming events, which
/// carry none, left out).
pub fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|event| {
            let mut id = String::new();
            let mut data = None;
            for line in event.lines() {
                if let Some(rest) = line.strip_prefix("id:") {
                    id = rest.trim().to_owned();
                } else if let Some(rest) = line.strip_prefix("data:") {
                    data = serde_json::from_str(rest.trim()).ok();
                }
            }
            data.map(|data| (id, data))
        })
        .collect()
}

/// Reads `response`'s body into `text` until `done(text)`, for `limit` at most.
pub async fn read_until(
    response: &mut reqwest::Response,
    text: &mut String,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done(text) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await;
        match chunk {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) => return,
            Ok(Err(e)) => panic!("the stream failed: {e}"),
            Err(_) => return,
        }
    }
}

/// The pid of the `conformance-server` listening at `replica` (`127.0.0.1:PORT`).
pub fn replica_pid(replica: &str) -> u32 {
    let port = replica.rsplit(':').next().expect("a port");
    let found = std::process::Command::new("pgrep")
        .args(["-f", &format!("conformance-server --http {port}$")])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .and_then(|pid| pid.trim().parse().ok())
        .expect("the replica's pid")
}

/// nginx on `127.0.0.1:port` with `include` (a `--print-nginx-config` text) in its `http {}`
/// block, in a temp directory of its own; stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Nginx {
    /// Starts nginx and waits (20 s at most) until `probe` (a path) answers through it.
    pub async fn start(include: &str, port: u16, probe: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mcp-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("nginx dir");
        let d = dir.display();
        std::fs::write(dir.join("mcp.conf"), include).expect("mcp.conf");
        let conf = format!(
            "worker_processes 1;\nerror_log {d}/error.log warn;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 1024; }}\nhttp {{\n    access_log off;\n    \
             client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    \
             fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    \
             scgi_temp_path {d}/scgi;\n    include {d}/mcp.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let child = std::process::Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx runs (apt-get install nginx-light)");
        let nginx = Self { child, dir };
        let url = format!("http://127.0.0.1:{port}{probe}");
        for _ in 0..200 {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return nginx;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
        panic!("nginx did not come up on port {port} within 20 s: {log}");
    }
}

impl Drop for Nginx {
    /// SIGTERM, which nginx's master passes on to its workers (SIGKILL would leave them
    /// behind), then SIGKILL after 5 s.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// POSTs `body` to the MCP endpoint `url`, in `session` (2025-11-25) when given (20 s).
pub fn post(
    client: &reqwest::Client,
    url: &str,
    body: String,
    session: Option<&str>,
) -> impl Future<Output = reqwest::Result<reqwest::Response>> + use<> {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .timeout(Duration::from_secs(20))
        .body(body);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    request.send()
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
