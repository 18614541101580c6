//! Where the host's and drivers' log lines go: standard error, as `luavirt: LEVEL (SOURCE):
//! MESSAGE`, filtered by `-v`/`-vv`, else `LUAVIRT_LOG`, else `RUST_LOG` (both take
//! `env_logger`'s filters: `debug`, `qemu=debug,warn`), else warnings and errors only.

use std::io::Write;

/// The filter `-v` given `verbosity` times chooses, else the environment's, else `warn`.
fn filter(verbosity: u8) -> String {
    let spec = match verbosity {
        0 => ["LUAVIRT_LOG", "RUST_LOG"]
            .iter()
            .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
            .unwrap_or_else(|| "warn".to_string()),
        1 => "info".to_string(),
        _ => "debug".to_string(),
    };
    // luavirt's own level name, as its lines print it.
    spec.split(',').map(|part| part.replace("warning", "warn")).collect::<Vec<_>>().join(",")
}

/// Installs the logger; call once, before the host loads drivers.
pub fn init(verbosity: u8) {
    env_logger::Builder::new()
        .parse_filters(&filter(verbosity))
        .target(env_logger::Target::Stderr)
        .format(|buf, record| {
            let level = match record.level() {
                log::Level::Error => "error",
                log::Level::Warn => "warning",
                log::Level::Info => "info",
                log::Level::Debug => "debug",
                log::Level::Trace => "trace",
            };
            writeln!(buf, "luavirt: {level} ({}): {}", record.target(), record.args())
        })
        .init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_v_shows_more() {
        assert_eq!(super::filter(1), "info");
        assert_eq!(super::filter(3), "debug");
    }
}
