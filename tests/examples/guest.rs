//! Boots dist/vmlinuz + dist/initrd-pxe with the debug shell and a test ssh key, runs each
//! argument in the guest, prints the output, and powers off. For poking at a build:
//!
//!     cargo run -p corral-harness --example guest -- 'dmesg | tail' 'ssh:sudo system-docker ps'
//!
//! An argument is a root shell command on the debug shell; with `ssh:` in front it runs
//! over ssh as `corral` instead; with `monitor:`, it goes to QEMU's monitor. Extra kernel
//! options go in CORRAL_APPEND.

use corral_harness::{dist_dir, free_port, log_dir, repo_root, Boot, KeyPair, Ssh, Vm, VmConfig};
use std::time::Duration;

fn main() {
    let append = std::env::var("CORRAL_APPEND").unwrap_or_default();
    let key = match KeyPair::ensure(&repo_root().join("target/e2e-key/id_ed25519"), "corral-e2e") {
        Ok(k) => k,
        Err(e) => return eprintln!("guest: {e}"),
    };
    let mut cfg = VmConfig::new(Boot::Kernel {
        kernel: dist_dir().join("vmlinuz"),
        initrd: dist_dir().join("initrd-pxe"),
        cmdline: format!(
            "console=ttyS0,115200n8 corral.debug_shell=ttyS1 {} {append}",
            key.kernel_option()
        ),
    });
    let port = free_port().unwrap_or(2223);
    cfg.ssh_port = Some(port);
    let ssh = Ssh {
        port,
        user: "corral".into(),
        key: key.private.clone(),
    };
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
        if let Some(m) = cmd.strip_prefix("monitor:") {
            println!("(monitor) {m}\n{:?}", vm.monitor(m));
            continue;
        }
        let result = match cmd.strip_prefix("ssh:") {
            Some(remote) => ssh
                .wait_ready(Duration::from_secs(240))
                .and_then(|_| ssh.run(remote, Duration::from_secs(120))),
            None => vm.run(&cmd, Duration::from_secs(120)),
        };
        match result {
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
