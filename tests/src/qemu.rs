//! The QEMU command line for a Corral machine: TCG (no KVM on the build machines), two
//! cores, virtio devices (2-4x faster to boot than IDE), user networking with forwards on
//! 127.0.0.1 only, and SeaBIOS or OVMF.

use std::path::{Path, PathBuf};

/// What the machine boots.
#[derive(Debug, Clone)]
pub enum Boot {
    /// An ISO on a virtio-scsi CD, first in the boot order.
    Iso(PathBuf),
    /// A raw disk image (virtio-blk), first in the boot order.
    Disk(PathBuf),
    /// A raw disk image on an NVMe controller (as EC2's Nitro instances present their
    /// root volume), first in the boot order.
    Nvme(PathBuf),
    /// Kernel and initrd given to QEMU directly, with this command line.
    Kernel {
        kernel: PathBuf,
        initrd: PathBuf,
        cmdline: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default.
    Bios,
    /// OVMF from Debian's ovmf package.
    Uefi,
}

/// Debian's OVMF build (package ovmf).
pub const OVMF: &str = "/usr/share/ovmf/OVMF.fd";

/// An extra drive.
#[derive(Debug, Clone)]
pub struct Drive {
    pub file: PathBuf,
    /// "virtio" (virtio-blk), "nvme" or "cdrom" (virtio-scsi CD).
    pub kind: &'static str,
}

/// Where the serial ports go.
#[derive(Debug, Clone)]
pub enum Serial {
    /// ttyS0 on the terminal, with QEMU's monitor (Ctrl-A X quits): for `make run`.
    Stdio,
    /// ttyS0 and ttyS1 on unix sockets that QEMU waits for a client on, and QEMU's
    /// monitor on a third (for `system_powerdown`): for the harness.
    Sockets {
        console: PathBuf,
        shell: PathBuf,
        monitor: PathBuf,
    },
}

/// A machine's configuration.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub boot: Boot,
    pub firmware: Firmware,
    pub memory_mb: u32,
    pub cpus: u32,
    /// Host port on 127.0.0.1 forwarded to the guest's port 22.
    pub ssh_port: Option<u16>,
    /// More (host port, guest port) TCP forwards on 127.0.0.1.
    pub forwards: Vec<(u16, u16)>,
    /// Host port on 127.0.0.1 that the guest reaches as 169.254.169.254:80 (a fake EC2
    /// metadata service). guestfwd only forwards inside the guest network, so the guest
    /// network becomes 169.254.0.0/16.
    pub metadata_port: Option<u16>,
    /// More guest addresses forwarded to a host port on 127.0.0.1, as
    /// (`169.254.x.y:port`, host port): an update repository's web server. Like the
    /// metadata service's, they put the guest network on 169.254.0.0/16. Each needs a
    /// guest port of its own (QEMU 7.2 names a guestfwd by its port: two on port 80
    /// fail with "duplicate yank instance"), and each guest connection gets its own
    /// connection to the host port.
    pub guest_forwards: Vec<(String, u16)>,
    pub drives: Vec<Drive>,
    /// The SMBIOS system manufacturer (`Amazon EC2` makes the guest believe it is on EC2).
    pub smbios_vendor: Option<String>,
    /// Exit QEMU instead of rebooting the guest.
    pub no_reboot: bool,
    /// The guest reaches nothing but the forwards (QEMU's `restrict=on`): tests never
    /// send to another address, and "offline" is what a test sees. `make run` turns it
    /// off so that a user's machine can pull images.
    pub isolated: bool,
    /// More virtio NICs after the first (eth1, eth2, ...), each on a network of its own
    /// that reaches nothing (QEMU's user network with `restrict=on` and no forwards, on
    /// 10.0.11.0/24, 10.0.12.0/24, ... so that its DHCP lease does not shadow eth0's
    /// 10.0.2.0/24): for bonds and VLANs.
    pub extra_nics: u32,
    /// Two more NICs after those, joined by a QEMU hub (one L2 link that nothing else is
    /// on): a test moves the second into a container that serves the first (DHCPv6).
    pub linked_pair: bool,
    /// A last NIC on a private segment shared with other machines (a QEMU `dgram`
    /// netdev to a [`crate::lan::Hub`] on 127.0.0.1).
    pub lan: Option<crate::lan::LanPort>,
}

impl VmConfig {
    pub fn new(boot: Boot) -> VmConfig {
        VmConfig {
            boot,
            firmware: Firmware::Bios,
            memory_mb: 2048,
            cpus: 2,
            ssh_port: None,
            forwards: Vec::new(),
            metadata_port: None,
            guest_forwards: Vec::new(),
            drives: Vec::new(),
            smbios_vendor: None,
            no_reboot: true,
            isolated: true,
            extra_nics: 0,
            linked_pair: false,
            lan: None,
        }
    }

    fn netdev(&self) -> String {
        let mut net = String::from("user,id=n0");
        if self.isolated {
            net.push_str(",restrict=on");
        }
        if self.metadata_port.is_some() || !self.guest_forwards.is_empty() {
            net.push_str(",net=169.254.0.0/16,dhcpstart=169.254.0.15");
        }
        if let Some(port) = self.metadata_port {
            net.push_str(&format!(
                ",guestfwd=tcp:169.254.169.254:80-tcp:127.0.0.1:{port}"
            ));
        }
        for (guest, port) in &self.guest_forwards {
            // One bridge per guest connection (a `tcp:` chardev would be one stream that
            // every connection shares, and a server closing it would end them all): bash
            // joins the connection to 127.0.0.1:port, and either side closing ends both.
            net.push_str(&format!(
                ",guestfwd=tcp:{guest}-cmd:bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}; \
                 cat <&3 & r=$!; cat 0<&0 >&3 & w=$!; wait -n; kill $r $w 2>/dev/null'"
            ));
        }
        let ssh = self.ssh_port.map(|p| (p, 22));
        for (host, guest) in ssh.into_iter().chain(self.forwards.iter().copied()) {
            net.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
        }
        net
    }

    /// QEMU's arguments.
    pub fn args(&self, serial: &Serial) -> Vec<String> {
        let mut a: Vec<String> = [
            // One host thread for every vCPU: with QEMU 7.2's multi-threaded TCG, Debian
            // 13's 6.12 kernel dies of an `Oops: int3` at a random static-key flip early
            // in the boot (a vCPU runs stale code across the other's text_poke_bp),
            // which tsc=reliable alone did not prevent.
            "-accel",
            "tcg,thread=single",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ]
        .map(String::from)
        .to_vec();
        let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
        push(&[
            "-smp",
            &self.cpus.to_string(),
            "-m",
            &self.memory_mb.to_string(),
        ]);
        if self.firmware == Firmware::Uefi {
            push(&["-bios", OVMF]);
        }
        if self.no_reboot {
            push(&["-no-reboot"]);
        }
        match serial {
            Serial::Stdio => push(&["-serial", "mon:stdio"]),
            Serial::Sockets {
                console,
                shell,
                monitor,
            } => {
                let con = format!("socket,id=con,path={},server=on,wait=on", console.display());
                let sh = format!("socket,id=sh,path={},server=on,wait=on", shell.display());
                let mon = format!("unix:{},server=on,wait=off", monitor.display());
                push(&["-chardev", &con, "-serial", "chardev:con"]);
                push(&["-chardev", &sh, "-serial", "chardev:sh"]);
                push(&["-monitor", &mon]);
            }
        }
        if let Some(vendor) = &self.smbios_vendor {
            push(&["-smbios", &format!("type=1,manufacturer={vendor}")]);
        }
        push(&["-device", "virtio-scsi-pci,id=scsi0"]);
        push(&["-device", "virtio-rng-pci"]);
        let path = |p: &Path| p.display().to_string();
        match &self.boot {
            Boot::Iso(iso) => {
                let drive = format!(
                    "if=none,id=boot,file={},media=cdrom,readonly=on,format=raw",
                    path(iso)
                );
                push(&[
                    "-drive",
                    &drive,
                    "-device",
                    "scsi-cd,drive=boot,bus=scsi0.0,bootindex=0",
                ]);
            }
            Boot::Disk(disk) | Boot::Nvme(disk) => {
                let drive = format!("if=none,id=boot,file={},format=raw", path(disk));
                let device = if matches!(self.boot, Boot::Nvme(_)) {
                    "nvme,drive=boot,serial=corral-root,bootindex=0"
                } else {
                    "virtio-blk-pci,drive=boot,bootindex=0"
                };
                push(&["-drive", &drive, "-device", device]);
            }
            Boot::Kernel {
                kernel,
                initrd,
                cmdline,
            } => push(&[
                "-kernel",
                &path(kernel),
                "-initrd",
                &path(initrd),
                "-append",
                cmdline,
            ]),
        }
        for (i, d) in self.drives.iter().enumerate() {
            let id = format!("d{i}");
            let media = if d.kind == "cdrom" {
                ",media=cdrom,readonly=on"
            } else {
                ""
            };
            let drive = format!("if=none,id={id},file={},format=raw{media}", path(&d.file));
            let device = match d.kind {
                "nvme" => format!("nvme,drive={id},serial=corral{i}"),
                "cdrom" => format!("scsi-cd,drive={id},bus=scsi0.0"),
                _ => format!("virtio-blk-pci,drive={id}"),
            };
            push(&["-drive", &drive, "-device", &device]);
        }
        // romfile= drops the iPXE option ROM, so firmware never tries a network boot.
        push(&[
            "-netdev",
            &self.netdev(),
            "-device",
            "virtio-net-pci,netdev=n0,romfile=",
        ]);
        for i in 1..=self.extra_nics {
            push(&[
                "-netdev",
                &format!(
                    "user,id=n{i},restrict=on,net=10.0.{n}.0/24,ipv6-net=fd00:{n}::/64",
                    n = 10 + i
                ),
                "-device",
                &format!("virtio-net-pci,netdev=n{i},romfile="),
            ]);
        }
        if self.linked_pair {
            for id in ["link0", "link1"] {
                push(&[
                    "-netdev",
                    &format!("hubport,id={id},hubid=7"),
                    "-device",
                    &format!("virtio-net-pci,netdev={id},romfile="),
                ]);
            }
        }
        if let Some(lan) = &self.lan {
            push(&[
                "-netdev",
                &format!(
                    "dgram,id=lan,local.type=inet,local.host=127.0.0.1,local.port={},\
                     remote.type=inet,remote.host=127.0.0.1,remote.port={}",
                    lan.local, lan.hub
                ),
                "-device",
                &format!("virtio-net-pci,netdev=lan,mac={},romfile=", lan.mac),
            ]);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(cfg: &VmConfig, serial: &Serial) -> String {
        cfg.args(serial).join(" ")
    }

    #[test]
    fn iso_boots_from_a_virtio_scsi_cd_with_tcg_and_two_cores() {
        let mut cfg = VmConfig::new(Boot::Iso("/d/corral.iso".into()));
        cfg.ssh_port = Some(2222);
        let a = joined(&cfg, &Serial::Stdio);
        assert!(a.contains("-accel tcg,thread=single"));
        assert!(a.contains("-smp 2 -m 2048"));
        assert!(a.contains("scsi-cd,drive=boot,bus=scsi0.0,bootindex=0"));
        assert!(a.contains("hostfwd=tcp:127.0.0.1:2222-:22"));
        assert!(a.contains("-serial mon:stdio"));
        assert!(!a.contains("-bios"));
    }

    #[test]
    fn disks_boot_first_on_virtio_or_nvme() {
        let virtio = joined(
            &VmConfig::new(Boot::Disk("/d/a.img".into())),
            &Serial::Stdio,
        );
        assert!(virtio
            .contains("file=/d/a.img,format=raw -device virtio-blk-pci,drive=boot,bootindex=0"));
        let nvme = joined(
            &VmConfig::new(Boot::Nvme("/d/a.img".into())),
            &Serial::Stdio,
        );
        assert!(nvme.contains(
            "file=/d/a.img,format=raw -device nvme,drive=boot,serial=corral-root,bootindex=0"
        ));
    }

    #[test]
    fn metadata_forward_moves_the_guest_network_to_link_local() {
        let mut cfg = VmConfig::new(Boot::Disk("/d/corral.img".into()));
        cfg.metadata_port = Some(18080);
        cfg.firmware = Firmware::Uefi;
        let a = joined(&cfg, &Serial::Stdio);
        assert!(a.contains("net=169.254.0.0/16,dhcpstart=169.254.0.15"));
        assert!(a.contains("guestfwd=tcp:169.254.169.254:80-tcp:127.0.0.1:18080"));
        assert!(a.contains(&format!("-bios {OVMF}")));
    }

    #[test]
    fn a_lan_nic_is_a_dgram_netdev_to_its_hub_port_on_the_loopback() {
        let mut cfg = VmConfig::new(Boot::Disk("/d/a.img".into()));
        cfg.lan = Some(crate::lan::LanPort {
            local: 40001,
            hub: 40002,
            mac: "52:54:00:77:00:01".into(),
        });
        let a = joined(&cfg, &Serial::Stdio);
        assert!(a.contains(
            "-netdev dgram,id=lan,local.type=inet,local.host=127.0.0.1,local.port=40001,\
             remote.type=inet,remote.host=127.0.0.1,remote.port=40002 \
             -device virtio-net-pci,netdev=lan,mac=52:54:00:77:00:01,romfile="
        ));
        // After the user-mode NIC: eth1 in the guest.
        assert!(a.find("netdev=n0").expect("eth0") < a.find("netdev=lan").expect("eth1"));
    }

    #[test]
    fn sockets_wait_for_the_harness_and_extra_drives_get_their_bus() {
        let mut cfg = VmConfig::new(Boot::Kernel {
            kernel: "/k".into(),
            initrd: "/i".into(),
            cmdline: "console=ttyS0".into(),
        });
        cfg.drives.push(Drive {
            file: "/s.img".into(),
            kind: "nvme",
        });
        let a = joined(
            &cfg,
            &Serial::Sockets {
                console: "/t/c.sock".into(),
                shell: "/t/s.sock".into(),
                monitor: "/t/m.sock".into(),
            },
        );
        assert!(a.contains("socket,id=con,path=/t/c.sock,server=on,wait=on"));
        assert!(a.contains("-monitor unix:/t/m.sock,server=on,wait=off"));
        assert!(a.contains("-append console=ttyS0"));
        assert!(a.contains("nvme,drive=d0,serial=corral0"));
        assert!(
            a.contains("-netdev user,id=n0,restrict=on"),
            "isolated: {a}"
        );
        assert!(!a.contains("id=n1"), "one NIC unless asked");
        cfg.isolated = false;
        assert!(!joined(&cfg, &Serial::Stdio).contains("restrict"));
        cfg.extra_nics = 2;
        let a = joined(&cfg, &Serial::Stdio);
        assert!(
            a.contains("-netdev user,id=n2,restrict=on,net=10.0.12.0/24,ipv6-net=fd00:12::/64 -device virtio-net-pci,netdev=n2,romfile="),
            "the extra NICs reach nothing: {a}"
        );
    }
}
