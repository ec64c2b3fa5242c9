use super::fake::{Fake, GIB};
use super::*;
use corral_disk::layout::MIB;
use corral_disk::Table;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};

fn request(fake: &Fake, device: &str) -> Request {
    Request {
        device: fake.node(device),
        cloud_config: None,
        force: true,
        reboot: false,
        work: fake.root.path().join("work"),
    }
}

fn never_asked(_: &str) -> std::io::Result<bool> {
    panic!("-f must not ask")
}

/// Fills a region of a disk file with a pattern, as old data.
fn scribble(node: &Path, offset: u64, len: usize) {
    let mut f = fs::OpenOptions::new().write(true).open(node).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&vec![0xAA; len]).unwrap();
}

fn read(node: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut f = fs::File::open(node).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

fn unchanged(node: &Path) -> bool {
    read(node, 0, 4096).iter().all(|&b| b == 0xAA)
}

#[test]
fn a_blank_disk_gets_the_layout_grub_slot_a_and_the_cloud_config() {
    let fake = Fake::new(3 * GIB);
    let vda = fake.node("vda");
    scribble(&vda, 0, 2 * MIB as usize);
    // Old data where slot B starts: a stale filesystem there must not survive.
    scribble(&vda, 353 * MIB, 4096);
    let cc = fake.root.path().join("cc.yml");
    fs::write(
        &cc,
        "hostname: n1\nssh_authorized_keys:\n  - ssh-ed25519 AAAA k\n",
    )
    .unwrap();
    let mut req = request(&fake, "vda");
    req.cloud_config = Some(cc.clone());
    let done = install(&fake, &req, &mut never_asked).expect("installs");
    assert_eq!(done.disk, vda);
    assert_eq!(done.source, fake.node("sr0"));

    // The table: corral-disk's layout, the state partition to the end of the disk.
    let mut f = fs::File::open(&vda).unwrap();
    let table = Table::read(&mut f).expect("a GPT");
    let names: Vec<&str> = table.partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["BIOS", "CORRAL_EFI", "CORRAL_A", "CORRAL_B", "CORRAL_STATE"]
    );
    assert_eq!(table.partitions[4].last, table.sectors - 34);
    assert_eq!(done.state_bytes, table.partitions[4].bytes());
    assert!(done.state_bytes > 2 * GIB);
    assert!(!table.disk_guid.is_zero());

    // GRUB for BIOS: boot.img in the MBR pointing at core.img in partition 1, whose
    // block list points at its own second sector.
    let mbr = read(&vda, 0, 512);
    assert_eq!(&mbr[0x5c..0x64], &2048u64.to_le_bytes());
    assert_eq!(&mbr[0x66..0x68], &[0x90, 0x90]);
    assert_eq!(&mbr[510..], &[0x55, 0xAA]);
    assert_eq!(mbr[446 + 4], 0xEE, "the protective MBR's partition is kept");
    let core = read(&vda, MIB, 3 * 512);
    assert_eq!(&core[0x200 - 12..0x200 - 4], &2049u64.to_le_bytes());
    assert!(read(&vda, 353 * MIB, 4096).iter().all(|&b| b == 0));

    // The filesystems, made on the partitions and filled.
    let calls = fake.calls();
    let p = |n: usize| fake.node(&format!("vda{n}")).display().to_string();
    let expected = [
        format!("mount {} iso9660 ro", fake.node("sr0").display()),
        format!("reread {}", vda.display()),
        format!("mkfs.vfat -F 16 -n CORRAL_EFI {}", p(2)),
        format!("mount {} vfat", p(2)),
        "unmount mnt-vda2".into(),
        format!("mkfs.ext4 -q -F -L CORRAL_A {}", p(3)),
        format!("mount {} ext4", p(3)),
        "unmount mnt-vda3".into(),
        format!("mkfs.ext4 -q -F -L CORRAL_STATE {}", p(5)),
        format!("mount {} ext4", p(5)),
        "unmount mnt-vda5".into(),
        "sync".into(),
        "unmount mnt-sr0".into(),
    ];
    assert_eq!(calls, expected);
    let esp = fake.filesystem(Path::new(&p(2)));
    let kit = fake.iso_tree.join(corral_disk::kit::KIT_DIR);
    for (on_esp, in_kit) in [
        ("EFI/BOOT/BOOTX64.EFI", "BOOTX64.EFI"),
        ("grub/grub.cfg", "grub.cfg"),
        ("grub/grubenv", "grubenv"),
    ] {
        assert_eq!(
            fs::read(esp.join(on_esp)).unwrap(),
            fs::read(kit.join(in_kit)).unwrap()
        );
    }
    let slot = fake.filesystem(Path::new(&p(3)));
    assert_eq!(fs::read(slot.join("vmlinuz")).unwrap(), b"the kernel");
    assert_eq!(fs::read(slot.join("initrd")).unwrap().len(), 3 << 20);
    assert_eq!(fs::read(slot.join("root.squashfs")).unwrap().len(), 2 << 20);
    let state = fake.filesystem(Path::new(&p(5)));
    let saved = state.join("corral/conf/cloud-config.yml");
    let text = fs::read_to_string(&saved).unwrap();
    assert!(text.starts_with("#cloud-config\nhostname: n1\n"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&saved), 0o600);
    assert_eq!(mode(saved.parent().unwrap()), 0o700);
    assert!(!req.work.exists(), "the scratch directory is removed");
}

#[test]
fn the_cloud_config_lands_where_pid_1_binds_var_lib_corral() {
    assert_eq!(
        cloud_config_on_state(),
        Path::new("corral/conf/cloud-config.yml")
    );
}

#[test]
fn without_force_it_asks_and_a_no_writes_nothing() {
    let fake = Fake::new(3 * GIB);
    let vda = fake.node("vda");
    scribble(&vda, 0, 4096);
    let mut req = request(&fake, "vda");
    req.force = false;
    let mut asked = String::new();
    let err = install(&fake, &req, &mut |q| {
        asked = q.to_string();
        Ok(false)
    })
    .unwrap_err();
    assert!(matches!(err, InstallError::Declined), "{err}");
    assert!(err.is_user_error());
    assert!(asked.contains(&format!("erases everything on {}", vda.display())));
    assert!(asked.contains("3.0 GiB, QEMU HARDDISK"), "{asked}");
    assert!(unchanged(&vda));
    assert_eq!(
        fake.calls(),
        [
            format!("mount {} iso9660 ro", fake.node("sr0").display()),
            "unmount mnt-sr0".to_string()
        ]
    );

    let mut yes = false;
    install(&fake, &req, &mut |_| {
        yes = true;
        Ok(true)
    })
    .expect("a yes installs");
    assert!(yes && !unchanged(&vda));
}

#[test]
fn answers_that_mean_yes() {
    for a in ["y", "yes\n", " YES "] {
        assert!(devices::is_yes(a), "{a:?}");
    }
    for a in ["", "n", "no", "yes please", "\n"] {
        assert!(!devices::is_yes(a), "{a:?}");
    }
}

/// Each refusal happens before any write.
fn refused(fake: &Fake, req: &Request) -> InstallError {
    let err = install(fake, req, &mut never_asked).unwrap_err();
    assert!(
        !fake.calls().iter().any(|c| c.starts_with("reread")),
        "{:?}",
        fake.calls()
    );
    err
}

#[test]
fn the_disk_holding_the_iso_is_refused() {
    let mut fake = Fake::new(3 * GIB);
    // The hybrid ISO written to a USB stick, labelled through its first partition.
    let sdb = fake.add_disk("sdb", (8, 16), 4 * GIB, &[(8, 17)]);
    fake.labels = vec![(fake.node("sdb1"), "CORRAL".into())];
    scribble(&sdb, 0, 4096);
    let err = refused(&fake, &request(&fake, "sdb"));
    assert!(matches!(err, InstallError::SourceDisk(_)), "{err}");
    assert!(err.to_string().contains("booted from"), "{err}");
    assert!(unchanged(&sdb));
    // The CD it booted from is refused the same way.
    let fake = Fake::new(3 * GIB);
    let err = refused(&fake, &request(&fake, "sr0"));
    assert!(matches!(err, InstallError::SourceDisk(_)), "{err}");
}

#[test]
fn a_partition_a_busy_disk_and_a_small_disk_are_refused() {
    let mut fake = Fake::new(3 * GIB);
    fake.add_disk("vdb", (254, 16), 3 * GIB, &[(254, 17), (254, 18)]);
    let err = refused(&fake, &request(&fake, "vdb2"));
    let text = err.to_string();
    assert!(
        text.contains("partition 2 of")
            && text.contains(&format!("-d {}", fake.node("vdb").display())),
        "{text}"
    );

    fake.busy = vec![((254, 18), "mounted on /run/corral/state on the host".into())];
    let err = refused(&fake, &request(&fake, "vdb"));
    assert!(
        err.to_string()
            .contains("in use (mounted on /run/corral/state"),
        "{err}"
    );

    fake.add_disk("vdc", (254, 32), 512 << 20, &[]);
    let err = refused(&fake, &request(&fake, "vdc"));
    assert!(
        err.to_string().contains("512 MiB") && err.to_string().contains("at least"),
        "{err}"
    );

    let file = fake.root.path().join("not-a-disk");
    fs::write(&file, "x").unwrap();
    let mut req = request(&fake, "vda");
    req.device = file;
    let err = refused(&fake, &req);
    assert!(matches!(err, InstallError::NotADisk(_)), "{err}");
}

#[test]
fn no_iso_or_an_iso_without_the_boot_kit_is_refused() {
    let mut fake = Fake::new(3 * GIB);
    fake.labels.clear();
    let err = refused(&fake, &request(&fake, "vda"));
    assert!(matches!(err, InstallError::NoSource), "{err}");

    let fake = Fake::new(3 * GIB);
    fs::remove_file(fake.iso_tree.join("boot/install/core.img")).unwrap();
    let err = refused(&fake, &request(&fake, "vda"));
    assert!(
        err.to_string().contains("lacks boot/install/core.img"),
        "{err}"
    );
}

#[test]
fn a_bad_cloud_config_is_refused_with_its_line_before_anything_else() {
    let fake = Fake::new(3 * GIB);
    let cc = fake.root.path().join("cc.yml");
    fs::write(&cc, "#cloud-config\nhostname: [web\n").unwrap();
    let mut req = request(&fake, "vda");
    req.cloud_config = Some(cc.clone());
    let err = refused(&fake, &req);
    let text = err.to_string();
    assert!(text.contains("cc.yml") && text.contains("line 3"), "{text}");
    assert!(fake.calls().is_empty(), "nothing was even mounted");

    fs::write(&cc, "#!/bin/sh\necho hi\n").unwrap();
    let err = refused(&fake, &req);
    assert!(
        err.to_string().contains("-c takes a #cloud-config"),
        "{err}"
    );

    req.cloud_config = Some(fake.root.path().join("missing.yml"));
    let err = refused(&fake, &req);
    assert!(err.to_string().contains("cannot be read"), "{err}");
    assert!(err.is_user_error());
}
