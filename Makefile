# Corral's two entry points on a fresh Debian 12 machine: `make run` and `make test`.
# Both install what they need (scripts/setup.sh) before anything else.

MUSL      := x86_64-unknown-linux-musl
SSH_PORT  ?= 2222
BUILD     := target/debug/corral-build
# The binaries that run inside Corral, static for musl.
IMAGE_CRATES := -p corral-init -p corral-manager -p corral-cli -p corral-user-docker

.PHONY: all setup binaries tool dist run ami bench test lint unit e2e fuzz clean readmes reboots faults upgrades rotate-root swarm

all: dist

setup:
	@bash scripts/setup.sh

binaries: setup
	cargo build --profile image --target $(MUSL) $(IMAGE_CRATES)

tool: setup
	cargo build -p corral-build

## Build every artifact into dist/ without booting anything. VERSION=x.y.z sets the
## version (os-release, the signed update); CORRAL_SIGNING_KEY=FILE signs with that key
## instead of the development key made in dist/ (docs/upgrades.md).
dist: binaries tool
	$(BUILD) dist $(if $(VERSION),--os-version $(VERSION))

## Build, then boot dist/corral.iso in QEMU with the console here.
run: dist
	$(BUILD) run --ssh-port $(SSH_PORT)

## Upload dist/corral.img and register an AMI (docs/ec2.md): AMI_ARGS="--region
## eu-west-1 --bucket my-bucket" for the S3 import, coldsnap without --bucket.
ami: dist
	$(BUILD) ami $(AMI_ARGS)

## Boot the floor and Corral (ISO, disk image) BENCH_RUNS times each; write
## dist/bench.json and the table in docs/benchmarks.md.
BENCH_RUNS ?= 3
bench: dist
	$(BUILD) bench --runs $(BENCH_RUNS)

## Everything CI runs: style, lints, unit and integration tests, then the end-to-end
## tests that boot the real artifacts in QEMU.
test: lint unit dist e2e

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# The manager's integration tests run the busybox test image (`corral-build test-images`).
unit: setup tool
	$(BUILD) test-images
	cargo test --workspace --exclude corral-harness
	cargo test -p corral-harness --lib --test architecture --test readmes --test fuzz

# Two guests at once, one per core, slowest first (.config/nextest.toml); the
# benchmark's smoke run (tests/tests/bench_smoke.rs) is one of the tests.
e2e: dist
	$(BUILD) test-images
	cargo nextest run -p corral-harness --profile e2e

## The end-to-end scenarios of several boots each (the Debian console kept across a
## reboot, the ISO's `corral install` and the installed disk's BIOS and UEFI boots):
## ~12 min, two at a time; not part of `make test` (docs/testing.md).
reboots: dist
	$(BUILD) test-images
	cargo nextest run -p corral-harness --profile reboots

## Three machines on one private segment form a Docker Swarm from cloud-config, run a
## scaled web service and lose one machine (docs/swarm.md): ~30 min, not part of
## `make test` (docs/testing.md).
swarm: dist
	$(BUILD) test-images
	cargo test -p corral-harness --test swarm -- --ignored --nocapture

## Faults that take several boots of one disk (power cuts during the first boot's seed
## and during `corral config set`, a state partition filled by a workload, a damaged
## system store) and the image on a disk of its own size: ~40 min, not part of
## `make test` (docs/testing.md).
faults: dist
	$(BUILD) test-images
	cargo test -p corral-harness --test faults -- --ignored --test-threads=1 --nocapture

## Upgrades of the disk image: a second version (UPGRADE_VERSION) built into
## target/upgrade/dist and a third whose console cannot start into
## target/upgrade/unhealthy, both signed with dist/'s key; then one disk upgraded over
## http, rolled back by hand, by cut-off trial boots and by an unhealthy trial: not part
## of `make test` (docs/testing.md).
UPGRADE_VERSION ?= 99.0.0
# Moves dist/update to NEW_KEY (or renews its root): docs/upgrades.md.
rotate-root: tool
	@test -n "$(NEW_KEY)" || { echo "usage: make rotate-root NEW_KEY=path/key.pk8"; exit 2; }
	$(BUILD) rotate-root --new-key $(NEW_KEY)

upgrades: dist
	# The second version is published into a copy of dist/'s repository, so that it
	# offers the first version too (an older release the test must see refused).
	rm -rf target/upgrade/dist/update target/upgrade/dist/corral-*.update
	mkdir -p target/upgrade/dist && cp -a dist/update target/upgrade/dist/update
	$(BUILD) dist --os-version $(UPGRADE_VERSION) --dist-dir target/upgrade/dist
	# The unhealthy release goes into a copy of that repository: the newest metadata a
	# machine sees offers every version (TUF refuses older metadata than it trusted).
	rm -rf target/upgrade/unhealthy/update target/upgrade/unhealthy/corral-*.update
	mkdir -p target/upgrade/unhealthy && cp -a target/upgrade/dist/update target/upgrade/unhealthy/update
	$(BUILD) dist --os-version $(UPGRADE_VERSION).1 --dist-dir target/upgrade/unhealthy \
	  --cmdline-append "corral.services.console.image=corral/no-such-console:1 corral.rescue_after=0"
	$(BUILD) test-images
	cargo test -p corral-harness --test upgrades -- --ignored --test-threads=1 --nocapture

## Rewrite every crate's README.md from its crate docs (tests/tests/readmes.rs checks them).
readmes:
	CORRAL_WRITE_READMES=1 cargo test -p corral-harness --test readmes

clean:
	rm -rf dist target/corral target/e2e

# The cargo-fuzz targets (user-data and kernel command line parsers), a minute each.
# Needs a nightly toolchain and cargo-fuzz; `make test` runs a stable mutation test of
# the same parsers instead (config/src/validate.rs).
fuzz:
	cd fuzz && cargo +nightly fuzz run user_data -- -max_total_time=60
	cd fuzz && cargo +nightly fuzz run cmdline -- -max_total_time=60

