//! Fuzzing on stable, in `make test`: every parser of input from outside the machine
//! (user-data, the kernel command line, services files, NoCloud meta-data, GPT, the
//! filesystem labels of devices, the API's request lines) gets a fixed number of inputs
//! made by mutating the checked-in seeds (`fuzz/seeds/`) and each other: bit flips,
//! random bytes, YAML and command-line tokens, cut, repeated and spliced pieces. The
//! generator is seeded, so a run is the same every time; an input that panics is kept in
//! the temporary directory and named in the failure. `make fuzz` runs cargo-fuzz's
//! coverage-guided fuzzers for longer (nightly).

use std::io::Cursor;
use std::panic::AssertUnwindSafe;
use std::path::Path;

/// Inputs per parser: a few seconds for all of them in a debug build.
const ITERATIONS: usize = 10_000;
/// The largest input made.
const MAX_INPUT: usize = 1 << 20;

/// splitmix64: small, seeded, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Pieces that mean something to the parsers, spliced in whole.
const TOKENS: &[&[u8]] = &[
    b"&a ",
    b"*a",
    b"<<: ",
    b"[",
    b"]",
    b"{",
    b"}",
    b": ",
    b"- ",
    b"\n",
    b"  ",
    b"\"",
    b"'",
    b"!!binary ",
    b"!!str ",
    b"!!map ",
    b"? ",
    b"#",
    b"=",
    b",",
    b"\0",
    b"\xff\xfe",
    b"99999999999999999999999",
    b"-1",
    b"0x",
    b"..",
    b"/",
    b"corral.",
    b"rancher.",
    b"#cloud-config\n",
    b"#!",
    b"#compose\n",
    b"%YAML 1.1\n",
    b"---\n",
    b"\\",
    b"\t",
    b"|",
    b">",
    b"\xf0\x9f\x90\x84",
    b"{\"command\":",
    b"null",
    b"true",
];

fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = rng.next() as u8;
            }
            2 => {
                let at = rng.below(len + 1);
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below(16.min(len - i));
                out.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(64).min(len - i);
                let piece = out[i..i + n].to_vec();
                let at = rng.below(len + 1);
                out.splice(at..at, piece);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let n = rng.below(128).min(other.len() - i);
                    let at = rng.below(len + 1);
                    out.splice(at..at, other[i..i + n].iter().copied());
                }
            }
            _ => {
                let n = rng.below(len + 1);
                out.truncate(n);
            }
        }
    }
    out.truncate(MAX_INPUT);
    out
}

/// The checked-in seeds of `target`.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("seed"))
        .collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// Runs `target` on [`ITERATIONS`] inputs grown from `seeds`, each after `fix` (which
/// may repair what a parser checks first, such as checksums, to reach further in).
/// `target` says whether the parser accepted the input: both outcomes must occur, or the
/// mutations never got past the parser's first check (or never broke anything).
fn fuzz(
    name: &str,
    seeds: Vec<Vec<u8>>,
    fix: impl Fn(&mut Rng, &mut [u8]),
    target: impl Fn(&[u8]) -> bool,
) {
    let mut rng = Rng(name.bytes().fold(0x5eed, |h: u64, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    }));
    let mut corpus = seeds.clone();
    for seed in &seeds {
        assert!(
            run_one(name, usize::MAX, seed, &target),
            "{name}: a seed is refused"
        );
    }
    let mut accepted = 0;
    for i in 0..ITERATIONS {
        let base = corpus[rng.below(corpus.len())].clone();
        let mut input = mutate(&mut rng, &base, &seeds);
        fix(&mut rng, &mut input);
        accepted += usize::from(run_one(name, i, &input, &target));
        // Mutations build on each other: some inputs join the corpus.
        if corpus.len() < 64 && rng.below(8) == 0 {
            corpus.push(input);
        }
    }
    eprintln!("{name}: {accepted} of {ITERATIONS} inputs accepted");
    assert!(
        accepted > 0 && accepted < ITERATIONS,
        "{name}: {accepted} of {ITERATIONS} accepted"
    );
}

fn run_one(name: &str, i: usize, input: &[u8], target: &impl Fn(&[u8]) -> bool) -> bool {
    match std::panic::catch_unwind(AssertUnwindSafe(|| target(input))) {
        Ok(accepted) => accepted,
        Err(_) => {
            let path = std::env::temp_dir().join(format!("corral-fuzz-{name}-{i}"));
            let _ = std::fs::write(&path, input);
            panic!(
                "{name}: input {i} panicked the parser; it is kept in {}",
                path.display()
            );
        }
    }
}

fn no_fix(_: &mut Rng, _: &mut [u8]) {}

#[test]
fn user_data_never_panics() {
    fuzz("user_data", seeds("user_data"), no_fix, |data| {
        let _ = corral_config::validate::user_data("fuzz", data);
        corral_config::userdata::parse("fuzz", data).is_ok()
    });
}

#[test]
fn the_kernel_command_line_never_panics() {
    fuzz("cmdline", seeds("cmdline"), no_fix, |data| {
        let text = String::from_utf8_lossy(data);
        let _ = corral_host::cmdline::BootOptions::parse(&text);
        corral_config::cmdline::parse(&text).1.is_empty()
    });
}

#[test]
fn services_files_never_panic() {
    fuzz("compose", seeds("compose"), no_fix, |data| {
        let text = String::from_utf8_lossy(data);
        match corral_compose::parse("fuzz.yml", &text) {
            Ok(file) => {
                let _ = corral_compose::merge(vec![file.clone(), file]);
                true
            }
            Err(_) => false,
        }
    });
}

#[test]
fn nocloud_meta_data_never_panics() {
    fuzz("meta_data", seeds("meta_data"), no_fix, |data| {
        corral_config::datasource::nocloud::meta_data("fuzz", data).is_ok()
    });
}

#[test]
fn api_request_lines_never_panic() {
    fuzz("api", seeds("api"), no_fix, |data| {
        corral_api::client::line_text(data.to_vec())
            .is_ok_and(|text| serde_json::from_str::<corral_api::protocol::Request>(&text).is_ok())
    });
}

/// A small disk with Corral's kind of table, as bytes.
fn gpt_seed(partitions: usize) -> Vec<u8> {
    let sectors = 256;
    let linux = corral_disk::Guid::parse("0FC63DAF-8483-4772-8E79-3D69D8477DE4").expect("guid");
    let table = corral_disk::Table {
        disk_guid: corral_disk::Guid::from_random([7; 16]),
        sectors,
        partitions: (0..partitions as u64)
            .map(|i| corral_disk::Partition {
                type_guid: linux,
                guid: corral_disk::Guid::from_random([i as u8 + 1; 16]),
                first: 34 + i * 40,
                last: 34 + i * 40 + 39,
                attributes: i << 60,
                name: format!("PART{i}"),
            })
            .collect(),
    };
    let mut disk = Cursor::new(vec![0u8; sectors as usize * 512]);
    table.write(&mut disk).expect("a table");
    disk.into_inner()
}

/// Half the time, makes the primary header's and entry array's checksums right again,
/// so that the reader goes past them.
fn fix_gpt(rng: &mut Rng, disk: &mut [u8]) {
    let (header, array, array_len) = (512, 1024, 128 * 128);
    if disk.len() < array + array_len || rng.below(2) == 0 {
        return;
    }
    let crc = crc32fast::hash(&disk[array..array + array_len]);
    disk[header + 88..header + 92].copy_from_slice(&crc.to_le_bytes());
    let size = u32::from_le_bytes([
        disk[header + 12],
        disk[header + 13],
        disk[header + 14],
        disk[header + 15],
    ]) as usize;
    let size = size.clamp(92, 512);
    disk[header + 16..header + 20].fill(0);
    let crc = crc32fast::hash(&disk[header..header + size]);
    disk[header + 16..header + 20].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn partition_tables_never_panic() {
    fuzz("gpt", vec![gpt_seed(2), gpt_seed(4)], fix_gpt, |data| {
        let mut disk = Cursor::new(data.to_vec());
        match corral_disk::Table::read(&mut disk) {
            Ok(mut table) => {
                let _ = table.check();
                let last = table.partitions.len();
                let _ = table.grow_last(last, table.sectors.saturating_mul(2));
                true
            }
            Err(_) => false,
        }
    });
}

/// A device's first 36 KiB holding an ext4 superblock, a FAT32 boot sector or an ISO 9660
/// volume descriptor, with a label.
fn label_seeds() -> Vec<Vec<u8>> {
    let mut ext4 = vec![0u8; 36 * 1024];
    ext4[1024 + 56..1024 + 58].copy_from_slice(&[0x53, 0xef]);
    ext4[1024 + 120..1024 + 132].copy_from_slice(b"CORRAL_STATE");
    let mut fat = vec![0u8; 36 * 1024];
    fat[510..512].copy_from_slice(&[0x55, 0xaa]);
    fat[82..87].copy_from_slice(b"FAT32");
    fat[71..77].copy_from_slice(b"cidata");
    let mut iso = vec![0u8; 36 * 1024];
    iso[32768] = 1;
    iso[32769..32774].copy_from_slice(b"CD001");
    iso[32768 + 40..32768 + 48].copy_from_slice(b"config-2");
    vec![ext4, fat, iso]
}

#[test]
fn filesystem_labels_never_panic() {
    fuzz("label", label_seeds(), no_fix, |data| {
        corral_host::label::from_bytes(data).is_some()
    });
}
