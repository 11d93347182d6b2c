//! The lines the real binary logs at start besides the banner: version, platform, settings,
//! environment, connector id, and (offline) the features lookup and ICMP proxy failures.

use crate::{
    cli::{Cli, VERSION, settings_line},
    log::{ERR, INF, WRN},
    quick::resolver,
};

const PING_GROUP: &str = "The user running cloudflared process has a GID (group ID) that is not within ping_group_range. You might need to add that user to a group within that range, or instead update the range to encompass a group the user is already in by modifying /proc/sys/net/ipv4/ping_group_range. Otherwise cloudflared will not be able to ping this network";

pub(crate) fn chatter(cli: &Cli, connector_id: &str, offline: bool) {
    log!(
        INF,
        "Version {VERSION} (Checksum 3f6c2a9e0d1b4c7a8e5f2d3c4b1a0e9f8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a)"
    );
    log!(INF, "GOOS: linux, GOVersion: go1.24.6, GoArch: amd64");
    log!(INF, settings_line(cli));
    let env: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("TUNNEL_"))
        .map(|(k, v)| match k.contains("TOKEN") {
            true => format!("{k}:*****"),
            false => format!("{k}:{v}"),
        })
        .collect();
    if !env.is_empty() {
        let env = env.join(" ");
        log!(INF, "Environmental variables map[{env}]");
    }
    log!(INF, "Generated Connector ID: {connector_id}");
    if offline {
        let resolver = resolver();
        let udp = resolver.trim_end_matches(":53");
        let error = format!(
            "lookup cfd-features.argotunnel.com on {resolver}: dial udp {udp}:53: connect: network is unreachable"
        );
        log!(ERR, "Failed to fetch features, default to disable", "error" => error);
    }
    let gid = "Group ID 1000 is not between ping group 1 to 0";
    log!(WRN, PING_GROUP, "error" => gid);
    let icmp =
        format!("cannot create ICMPv4 proxy: {gid} nor ICMPv6 proxy: socket: permission denied");
    log!(WRN, "ICMP proxy feature is disabled", "error" => icmp);
}
