//! zerolog's output as cloudflared writes it: console or JSON lines on stderr, bare final errors.

use std::{
    collections::{BTreeMap, hash_map::RandomState},
    hash::BuildHasher as _,
    io::Write as _,
    process::exit,
    sync::OnceLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;

/// zerolog's level names (console, JSON), by level index.
pub(crate) const LEVELS: [&str; 5] = ["DBG", "INF", "WRN", "ERR", "FTL"];
pub(crate) const LEVEL_NAMES: [&str; 5] = ["debug", "info", "warn", "error", "fatal"];
pub(crate) const INF: usize = 1;
pub(crate) const WRN: usize = 2;
pub(crate) const ERR: usize = 3;

/// (json output, minimum level), set once from the flags.
pub(crate) static LOG: OnceLock<(bool, usize)> = OnceLock::new();

/// `log!(LEVEL, "message {inline_arg}", "key" => value, ...)`: one stderr line. A message that
/// is not a literal (a const) is used as is.
macro_rules! log {
    ($lvl:expr, $msg:literal $(, $k:literal => $v:expr)* $(,)?) => {
        $crate::log::emit($lvl, &format!($msg), &[$(($k, ::serde_json::json!($v))),*])
    };
    ($lvl:expr, $msg:expr $(, $k:literal => $v:expr)* $(,)?) => {
        $crate::log::emit($lvl, &$msg, &[$(($k, ::serde_json::json!($v))),*])
    };
}

pub(crate) fn emit(level: usize, msg: &str, fields: &[(&str, Value)]) {
    let &(json, min_level) = LOG.get().unwrap_or(&(false, INF));
    if level < min_level {
        return;
    }
    let mut map: BTreeMap<&str, Value> = fields.iter().cloned().collect();
    let line = if json {
        // A BTreeMap serialises in key order, as zerolog's JSON does.
        map.insert("level", LEVEL_NAMES[level].into());
        map.insert("message", msg.into());
        map.insert("time", now_rfc3339().into());
        serde_json::to_string(&map).unwrap_or_default()
    } else {
        let mut line = format!("{} {} {msg}", now_rfc3339(), LEVELS[level]);
        // zerolog's console writer sorts the fields but moves `error` to the front.
        let error = map.remove_entry("error");
        for (k, v) in error.into_iter().chain(map) {
            let v = match v {
                // zerolog quotes strings holding spaces, quotes or control characters.
                Value::String(s) if s.chars().any(|c| c <= ' ' || c == '"' || c == '\\') => {
                    Value::String(s).to_string()
                }
                Value::String(s) => s,
                other => other.to_string(),
            };
            line.push_str(&format!(" {k}={v}"));
        }
        line
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Runtime and usage failures end with the bare error (no timestamp, no level) on stderr.
pub(crate) fn fail(msg: &str, code: i32) -> ! {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
    exit(code)
}

/// `--version` and usage errors go to stdout with exit 0, as the real binary does.
#[allow(clippy::print_stdout)]
pub(crate) fn stdout_and_exit(text: &str) -> ! {
    print!("{text}");
    let _ = std::io::stdout().flush();
    exit(0)
}

pub(crate) fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days since the epoch to a civil date (Howard Hinnant's algorithm), to avoid a chrono dep.
    let z = (secs / 86_400) as i64 + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let (day, month) = (
        doy - (153 * mp + 2) / 5 + 1,
        if mp < 10 { mp + 3 } else { mp - 9 },
    );
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = secs % 86_400;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// A fresh random u64: RandomState is seeded from the OS once per process and differs per call.
pub(crate) fn rand_u64() -> u64 {
    RandomState::new().hash_one(SystemTime::now())
}

pub(crate) fn uuid_v4() -> String {
    let (a, b) = (rand_u64(), rand_u64());
    let h = format!("{a:016x}{b:016x}");
    let variant = ["8", "9", "a", "b"][(b >> 62) as usize];
    let (p1, p2, p3, p4, p5) = (&h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..]);
    format!("{p1}-{p2}-4{p3}-{variant}{p4}-{p5}")
}

pub(crate) fn env_ms(name: &str, default: u64) -> Duration {
    let ms = std::env::var(name).ok().and_then(|v| v.parse().ok());
    Duration::from_millis(ms.unwrap_or(default))
}

/// cloudflared's AsciiBox: a border, one padded line per text, a border (`---` for an inner rule).
pub(crate) fn ascii_box(texts: &[&str]) {
    let width = texts.iter().map(|t| t.len()).max().unwrap_or(0);
    let border = format!("+{}+", "-".repeat(width + 4));
    log!(INF, border);
    for text in texts {
        match *text {
            "---" => log!(INF, border),
            text => log!(INF, "|  {text:<width$}  |"),
        }
    }
    log!(INF, border);
}
