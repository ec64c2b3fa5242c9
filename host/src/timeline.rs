//! PID 1's part of the boot report: when the kernel handed over, when the root was
//! switched and when the system was ready for the manager, written to [`STEPS`] for the
//! manager to put at the head of `corral boot-report`.

use crate::sys::Sys;
use std::path::Path;

/// One step per line: name, start, end (seconds since the kernel started) and the step
/// it followed, separated by tabs.
pub const STEPS: &str = "/run/corral/init-steps";

/// PID 1's three steps from its three moments.
pub fn lines(init_started: f64, root_switched: f64, ready: f64) -> String {
    [
        ("kernel", 0.0, init_started, ""),
        (
            "initramfs: modules, root",
            init_started,
            root_switched,
            "kernel",
        ),
        (
            "root: mounts, modules, state",
            root_switched,
            ready,
            "initramfs: modules, root",
        ),
    ]
    .iter()
    .map(|(name, start, end, after)| format!("{name}\t{start:.3}\t{end:.3}\t{after}\n"))
    .collect()
}

/// Writes the steps; a failure costs only the report's head, so it is logged.
pub fn write(sys: &dyn Sys, init_started: f64, root_switched: f64, ready: f64) {
    let path = Path::new(STEPS);
    let written = path
        .parent()
        .map_or(Ok(()), |dir| sys.mkdir_all(dir))
        .and_then(|()| sys.write(path, &lines(init_started, root_switched, ready)));
    if let Err(e) = written {
        log::warn!("the boot report's first steps: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_steps_each_after_the_last() {
        let text = lines(1.25, 1.5, 2.75);
        assert_eq!(
            text,
            "kernel\t0.000\t1.250\t\n\
             initramfs: modules, root\t1.250\t1.500\tkernel\n\
             root: mounts, modules, state\t1.500\t2.750\tinitramfs: modules, root\n"
        );
    }
}
