//! `corral-manager`: started by PID 1; runs until SIGTERM. `corral-manager status`
//! prints what the system engine runs. The work is the library's (`lifecycle::run`).

use anyhow::Context;
use corral_host::kmsg::KmsgLogger;
use corral_manager::{lifecycle, status};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => manage(),
        Some("status") => status::print().context("corral-manager status"),
        Some(other) => anyhow::bail!(
            "unknown command {other:?}; run `corral-manager` (PID 1 does) or `corral-manager status`"
        ),
    }
}

/// The manager proper, as PID 1 runs it: one thread, logging to the kernel log.
fn manage() -> anyhow::Result<()> {
    KmsgLogger::init("corral-manager", log::LevelFilter::Info);
    let manager_started = corral_host::since_boot();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the manager's async runtime")?
        .block_on(lifecycle::run(manager_started))
        .context("running the manager")
}
