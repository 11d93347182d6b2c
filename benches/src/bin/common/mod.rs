//! What the measuring bench binaries (`ws-idle`, `soak`) share: the loopback check, reading a
//! process's resident memory, and writing the result.

/// `Ok` when `url` has the given scheme (`ws://`) and a loopback host.
pub fn loopback(url: &str, scheme: &str) -> Result<(), String> {
    let host = url
        .strip_prefix(scheme)
        .ok_or(format!("expected a {scheme} URL: {url}"))?
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    if host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]") {
        Ok(())
    } else {
        Err(format!("not a loopback host: {host}"))
    }
}

/// The resident set of `pid` in KiB.
pub fn rss_kb(pid: u32) -> Result<u64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS for {pid}"))
}

/// Writes a run's result to `json` (or stderr) and turns the outcome into the exit code:
/// 2 for bad arguments, 1 for a failed run.
pub fn finish(
    name: &str,
    outcome: Result<Result<serde_json::Value, String>, String>,
    json: Option<&str>,
) -> std::process::ExitCode {
    let result = match outcome {
        Err(usage) => {
            eprintln!("{name}: {usage}");
            return std::process::ExitCode::from(2);
        }
        Ok(Err(e)) => {
            eprintln!("{name}: {e}");
            return std::process::ExitCode::FAILURE;
        }
        Ok(Ok(result)) => result.to_string(),
    };
    match json {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &result) {
                eprintln!("{name}: {path}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
        None => eprintln!("{result}"),
    }
    std::process::ExitCode::SUCCESS
}
