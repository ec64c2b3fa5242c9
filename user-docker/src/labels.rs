//! The labels that make an image a user engine, set by the build (`build/src/image.rs`
//! from an image's `image.yml` and its packages) and read by the manager when it lists
//! engines and switches between them.

/// The label that marks an image as a user engine.
pub const ENGINE_LABEL: (&str, &str) = ("io.corral.image", "engine");
/// The engine's name, `docker-<major>.<minor>`.
pub const NAME_LABEL: &str = "io.corral.engine";
/// The Docker version the engine carries.
pub const VERSION_LABEL: &str = "io.corral.engine.version";
/// The root's binaries an engine runs, space-separated absolute paths.
pub const HOST_BINARIES_LABEL: &str = "io.corral.engine.host-binaries";
