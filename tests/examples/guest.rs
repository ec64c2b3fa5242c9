//! Boots dist/vmlinuz + dist/initrd with the debug shell, runs each argument as a shell
//! command in the guest, prints the output, and powers off. For poking at a build:
//!
//!     cargo run -p corral-harness --example guest -- 'dmesg | tail' 'mount'
//!
//! Extra kernel options go in CORRAL_APPEND.

use corral_harness::{dist_dir, log_dir, Boot, Vm, VmConfig};
use std::time::Duration;

fn main() {
    let append = std::env::var("CORRAL_APPEND").unwrap_or_default();
    let cfg = VmConfig::new(Boot::Kernel {
        kernel: dist_dir().join("vmlinuz"),
        initrd: dist_dir().join("initrd"),
        cmdline: format!("console=ttyS0,115200n8 corral.debug_shell=ttyS1 {append}"),
    });
    let dir = log_dir("guest");
    let mut vm = match Vm::start("guest", &cfg, &dir, Vec::new()) {
        Ok(vm) => vm,
        Err(e) => return eprintln!("guest: {e}"),
    };
    match vm.wait_for("system engine ready", Duration::from_secs(300)) {
        Ok(at) => eprintln!("guest: system engine ready {at:.1}s after QEMU started"),
        Err(e) => eprintln!("guest: {e}"),
    }
    for cmd in std::env::args().skip(1) {
        match vm.run(&cmd, Duration::from_secs(120)) {
            Ok((code, out)) => println!("$ {cmd}  (exit {code})\n{out}"),
            Err(e) => println!("$ {cmd}\nguest: {e}"),
        }
    }
    let _ = vm.shell.send("poweroff\n");
    let _ = vm.wait_exit(Duration::from_secs(60));
    eprintln!(
        "guest: console log in {}",
        dir.join("console.log").display()
    );
}
