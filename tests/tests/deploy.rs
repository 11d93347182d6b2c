//! Deployment output: the cloudflared configs and systemd units that `--print-cloudflared-config`
//! and `--print-systemd-unit` print for a server, a bridge and a gateway, checked by what reads
//! them (`systemd-analyze verify`, Debian's `systemd`, which `.ci/run` installs).

use std::process::Command;

use mcp_expose_tests::bin;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-expose-deploy-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// Runs `program args...` in `cwd`; its stdout, after checking it succeeded within 20 s (a
/// print flag that is ignored starts a server, which never ends by itself).
fn printed(program: &std::path::Path, args: &[&str], cwd: &std::path::Path) -> String {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {args:?} did not exit within 20 s: it serves instead of printing",
                program.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    assert!(
        output.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(!text.is_empty(), "{args:?} printed nothing");
    text
}

fn gateway_config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("servers.toml");
    std::fs::write(
        &path,
        format!(
            "[servers.github]\ncommand = [{0:?}]\n[servers.db]\ncommand = [{0:?}]\n",
            bin("bioseq").display().to_string()
        ),
    )
    .expect("config");
    path
}

#[test]
fn every_print_flag_prints_and_exits_for_the_bridge_and_the_gateway() {
    let dir = temp_dir("flags");
    let config = gateway_config(&dir);
    let config = config.to_str().expect("path");
    let bioseq = bin("bioseq").display().to_string();
    let mcp = bin("mcp-expose");
    let host = ["--public-hostname", "mcp.example.com"];
    for args in [
        vec!["gateway", config, "--http", "8000", "--print-systemd-unit"],
        vec![
            "bridge",
            "--http",
            "8000",
            "--print-systemd-unit",
            "--",
            &bioseq,
        ],
        [
            &["bridge", "--http", "8000", "--print-cloudflared-config"][..],
            &host,
            &["--", &bioseq],
        ]
        .concat(),
    ] {
        // `printed` fails when the command serves instead (it would never end: `output` waits).
        let text = printed(&mcp, &args, &dir);
        assert!(
            text.contains("[Service]") || text.contains("ingress:"),
            "{args:?}:\n{text}"
        );
    }
    let unit = printed(
        &mcp,
        &[
            "bridge",
            "--http",
            "8000",
            "--print-systemd-unit",
            "--",
            &bioseq,
        ],
        &dir,
    );
    assert!(
        unit.contains("Description=bioseq MCP server"),
        "named after the program:\n{unit}"
    );
}

#[test]
fn a_gateways_cloudflared_config_routes_websocket_to_its_port_and_names_working_urls() {
    let dir = temp_dir("gateway");
    let config = gateway_config(&dir);
    let mcp = bin("mcp-expose");
    let args = |extra: &[&'static str]| {
        let mut args = vec![
            "gateway",
            config.to_str().expect("path"),
            "--print-cloudflared-config",
            "--public-hostname",
            "mcp.example.com",
        ];
        args.extend_from_slice(extra);
        args
    };
    let split = printed(&mcp, &args(&["--http", "8000", "--ws", "8001"]), &dir);
    for name in ["github", "db"] {
        assert!(
            split.contains(&format!(
                "    path: ^/{name}/ws$\n    service: http://127.0.0.1:8001\n"
            )),
            "WebSocket of {name} goes to the WebSocket port:\n{split}"
        );
        assert!(
            split.contains(&format!("https://mcp.example.com/{name}/mcp")),
            "{split}"
        );
    }
    assert!(
        split.contains("  - hostname: mcp.example.com\n    service: http://127.0.0.1:8000\n"),
        "{split}"
    );
    assert!(
        split.contains("--public-hostname mcp.example.com"),
        "says how to run the server:\n{split}"
    );
    assert!(
        !split.contains("--print-cloudflared-config\n") && split.contains("requires a token"),
        "{split}"
    );

    let sub = printed(&mcp, &args(&["--http", "8000", "--by-subdomain"]), &dir);
    // cloudflared cannot rewrite paths: the URLs printed are the ones that work.
    assert!(
        sub.contains("  - hostname: github.mcp.example.com\n    path: ^/github/\n"),
        "{sub}"
    );
    assert!(
        sub.contains("https://github.mcp.example.com/github/mcp"),
        "{sub}"
    );
    assert!(!sub.contains("https://github.mcp.example.com/mcp"), "{sub}");
    let allowed = sub.split("--allowed-host=").nth(1).unwrap_or_default();
    assert!(
        allowed.contains("github.mcp.example.com") && allowed.contains("db.mcp.example.com"),
        "{sub}"
    );
}

/// The unit `--print-systemd-unit` prints passes `systemd-analyze verify`, its relative paths
/// made absolute and `%` escaped; a binary under a home directory (where `cargo install` puts
/// it) runs as its owner with the home read-only, not hidden.
#[test]
fn printed_systemd_units_verify_with_absolute_paths_and_escaped_specifiers() {
    let dir = temp_dir("unit");
    std::fs::write(dir.join("tokens.txt"), "secret-token-123\n").expect("tokens");
    let bioseq = bin("bioseq");
    let unit = printed(
        &bioseq,
        &[
            "--http",
            "8000",
            "--auth-token-file",
            "tokens.txt",
            "--allowed-origin",
            "https://app.example.com/%7Ehome",
            "--print-systemd-unit",
        ],
        &dir,
    );
    let exec = unit
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    let tokens = dir.join("tokens.txt").display().to_string();
    assert!(
        exec.contains(&format!("--auth-token-file {tokens}")),
        "{exec}"
    );
    assert!(exec.contains("%%7Ehome"), "{exec}");
    assert!(!exec.contains("--print-systemd-unit"), "{exec}");
    verify(&dir, "bioseq", &unit);

    // The same binary under the home directory.
    let home = std::env::var("HOME").expect("HOME");
    if home.starts_with("/root") || home.starts_with("/home/") {
        let place = std::path::Path::new(&home)
            .join(".cache")
            .join(format!("mcp-expose-deploy-{}", std::process::id()));
        std::fs::create_dir_all(&place).expect("dir");
        let copy = place.join("bioseq");
        std::fs::copy(&bioseq, &copy).expect("copy");
        let unit = printed(&copy, &["--http", "8000", "--print-systemd-unit"], &dir);
        let _ = std::fs::remove_dir_all(&place);
        assert!(
            unit.contains("ProtectHome=read-only") && unit.contains("\nUser="),
            "{unit}"
        );
        assert!(!unit.contains("DynamicUser=yes"), "{unit}");
    }
}

/// Replicas sharing their state (`--state redis://..`) get a template unit, one instance per
/// port (`bioseq@8001`), which systemd accepts.
#[test]
fn replicas_sharing_state_get_a_template_unit_that_verifies() {
    let dir = temp_dir("template");
    let unit = printed(
        &bin("bioseq"),
        &[
            "--http",
            "8001",
            "--state",
            "redis://127.0.0.1:6379/0",
            "--print-systemd-unit",
        ],
        &dir,
    );
    assert!(
        unit.contains("/etc/systemd/system/bioseq@.service"),
        "{unit}"
    );
    let exec = unit
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    assert!(exec.contains("--http %i "), "{exec}");
    assert!(exec.contains("--state redis://127.0.0.1:6379/0"), "{exec}");
    verify(&dir, "bioseq@8001", &unit);
}

fn verify(dir: &std::path::Path, name: &str, unit: &str) {
    let file = dir.join(format!("{name}.service"));
    std::fs::write(&file, unit).expect("unit file");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .expect("systemd-analyze runs (Debian's systemd; .ci/run installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let own: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(&format!("{name}.service")))
        .collect();
    assert!(
        output.status.success() && own.is_empty(),
        "{stderr}\n{unit}"
    );
}
