//! `luavirt serve --stdio`: the remote end of a `DRIVER+ssh://` connection (see
//! `luavirt_host::remote::server`). Its standard output carries the protocol, so it prints
//! nothing else there; its exit status says how it ended.

use luavirt_host::Host;

/// Runs the server; returns the exit status (2 for a use it does not have).
pub fn run(stdio: bool, connect: Option<&str>) -> i32 {
    if !stdio {
        eprintln!(
            "error: luavirt serve has no listening mode: it serves only on its standard input and output (--stdio), as ssh runs it for a DRIVER+ssh:// connection"
        );
        return 2;
    }
    if let Some(uri) = connect {
        eprintln!("error: -c {uri}: luavirt serve opens the URI its client asks for; drop -c");
        return 2;
    }
    luavirt_host::remote::server::serve_stdio(&Host::load())
}
