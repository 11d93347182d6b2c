//! Helpers for the tunnel tests: a server whose `cloudflared` is the test double
//! (`src/bin/cloudflared/`), the URLs and token it prints, and the double's pid.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use base64::Engine as _;

use crate::{ServerProcess, bin};

/// PATH with the test double first, so `cloudflared` resolves to it.
pub fn path_with_double() -> String {
    let double = bin("cloudflared");
    let dir = double.parent().expect("bin dir").display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

/// A file in this test process's own temporary directory.
pub fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-expose-tunnel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// `bioseq args...` with the double on PATH and `env` added.
pub async fn start(args: &[&str], env: &[(&str, String)]) -> ServerProcess {
    let mut all = vec![("PATH", path_with_double())];
    all.extend(env.iter().cloned());
    ServerProcess::start_with_env("bioseq", args, &all).await
}

/// A well-formed named-tunnel token (the double checks its shape, nothing more), in a file.
pub fn token_file(name: &str) -> PathBuf {
    let b64 = base64::engine::general_purpose::STANDARD;
    let json = r#"{"a":"0123456789abcdef0123456789abcdef","t":"6ff42ae2-765d-4adf-8112-31c55c1551ef","s":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}"#;
    let path = temp_file(name);
    std::fs::write(&path, b64.encode(json)).expect("token file");
    path
}

/// The hostname in a banner line `streamable HTTP: https://HOST/mcp`.
pub fn banner_host(line: &str) -> String {
    let start = line.find("https://").expect("https URL") + "https://".len();
    line[start..].trim_end_matches("/mcp").trim().to_owned()
}

/// The token the server generated (printed once on stderr).
pub fn token(server: &ServerProcess) -> String {
    let line = server
        .log
        .iter()
        .find(|l| l.contains("generated access token"))
        .expect("a generated token is printed");
    line.rsplit(": ").next().expect("token").trim().to_owned()
}

/// The pid the double wrote to `FAKE_CLOUDFLARED_PIDFILE` (waits up to 10 s).
pub fn pid_from(file: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the double wrote no pid file");
        std::thread::sleep(Duration::from_millis(20));
    }
}
