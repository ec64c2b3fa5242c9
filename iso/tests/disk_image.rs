//! Builds a disk image from a stand-in kernel and initrd and reads it back with tools
//! that share no code with the builder: sfdisk for the table, mtools for the ESP,
//! debugfs for the ext4 slots, e2fsck for consistency.

use corral_disk::layout::{self, EFI, SLOT_A, STATE};
use corral_iso::disk::{build_disk, BootKit, DiskInputs};
use std::process::Command;

fn out(cmd: &mut Command) -> String {
    let o = cmd.output().expect("running a host tool");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_disk_image_holds_table_bootloaders_and_slot_a() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = dir.path().join("vmlinuz");
    let initrd = dir.path().join("initrd");
    std::fs::write(&kernel, b"kernel bytes").unwrap();
    std::fs::write(&initrd, vec![7u8; 300_000]).unwrap();
    let root = dir.path().join("root.squashfs");
    std::fs::write(&root, vec![5u8; 200_000]).unwrap();
    let image = dir.path().join("corral.img");
    let inputs = DiskInputs {
        kernel: &kernel,
        initrd: &initrd,
        root: &root,
        cmdline: "console=ttyS0",
        seed: [9; 16],
        work: &dir.path().join("work"),
        output: &image,
        tools: &corral_iso::Tools::host(),
    };
    let table = build_disk(&inputs).unwrap();
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 1 << 30);

    let dump = out(Command::new("sfdisk").arg("--dump").arg(&image));
    assert!(dump.contains("label: gpt"), "{dump}");
    for name in ["BIOS", "CORRAL_EFI", "CORRAL_A", "CORRAL_B", "CORRAL_STATE"] {
        assert!(dump.contains(&format!("name=\"{name}\"")), "{dump}");
    }
    out(Command::new("sfdisk").arg("--verify").arg(&image));

    // GRUB's boot sector is in the MBR, pointing at partition 1.
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(&bytes[0x5c..0x64], &2048u64.to_le_bytes());
    assert_eq!(&bytes[510..512], &[0x55, 0xAA]);

    let esp = &table.partitions[layout::number(&EFI) - 1];
    let fat = format!("{}@@{}", image.display(), esp.offset());
    let listing = out(Command::new("mdir").args(["-i", &fat, "-/", "-b", "::/"]));
    for f in ["EFI/BOOT/BOOTX64.EFI", "grub/grub.cfg", "grub/grubenv"] {
        assert!(listing.contains(f), "{f} missing from the ESP: {listing}");
    }
    let env = out(Command::new("mtype").args(["-i", &fat, "::/grub/grubenv"]));
    assert_eq!(env.len(), 1024);
    assert!(env.contains("corral_slot=A\n"));
    // The boot kit the ESP was filled from (and the ISO carries for `corral install`)
    // holds the same menu and environment.
    let kit = BootKit::in_dir(&dir.path().join("work/kit"));
    assert!(kit.files().iter().all(|f| f.is_file()), "{kit:?}");
    let cfg = out(Command::new("mtype").args(["-i", &fat, "::/grub/grub.cfg"]));
    assert_eq!(cfg, std::fs::read_to_string(&kit.grub_cfg).unwrap());
    assert_eq!(env, std::fs::read_to_string(&kit.grubenv).unwrap());

    let slot = &table.partitions[layout::number(&SLOT_A) - 1];
    let part = dir.path().join("slot.img");
    std::fs::write(
        &part,
        &bytes[slot.offset() as usize..(slot.offset() + slot.bytes()) as usize],
    )
    .unwrap();
    let ls = out(Command::new("debugfs").args(["-R", "ls -l /"]).arg(&part));
    assert!(ls.contains("vmlinuz") && ls.contains("initrd"), "{ls}");
    assert!(ls.contains("300000"), "the initrd's size: {ls}");
    assert!(
        ls.contains("root.squashfs") && ls.contains("200000"),
        "the root image beside it: {ls}"
    );
    out(Command::new("e2fsck").arg("-fn").arg(&part));

    let state = &table.partitions[layout::number(&STATE) - 1];
    let head = &bytes[state.offset() as usize..state.offset() as usize + 2048];
    // The label as PID 1 finds the state filesystem by it.
    assert_eq!(
        corral_host::label::from_bytes(head).as_deref(),
        Some("CORRAL_STATE"),
        "the state filesystem's label"
    );
}
