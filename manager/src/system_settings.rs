//! The system engine's spec with what the configuration asks of it
//! (`corral_config::system_engine`: `corral.system_docker` and the proxies). They are
//! read from the saved configuration as the manager starts the engine, before this
//! boot's user-data is fetched: settings that arrive with a first boot's user-data apply
//! from the next boot (docs/cloud-config.md). The system engine's images are preloaded,
//! so nothing it needs at boot waits on them.

use corral_config::schema::Corral;
use corral_dockerd::engine::EngineSpec;

/// `spec` with the configuration's settings for the system engine, and a warning for
/// each one it cannot take.
pub fn apply(mut spec: EngineSpec, corral: &Corral) -> (EngineSpec, Vec<String>) {
    let settings = corral_config::system_engine::settings(corral);
    spec.extra_args.extend(settings.extra_args);
    for (k, v) in settings.environment {
        spec.environment.retain(|(have, _)| *have != k);
        spec.environment.push((k, v));
    }
    (spec, settings.warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_follow_the_engines_own_and_a_variable_replaces_its_own() {
        let c: corral_config::schema::CloudConfig = yaml_serde::from_str(
            "corral:\n  system_docker:\n    extra_args: [--debug]\n    environment: [SSL_CERT_DIR=/mine, B=ok]\n",
        )
        .expect("yaml");
        let before = EngineSpec::system();
        let (spec, warnings) = apply(before.clone(), &c.corral);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(&spec.args()[before.args().len()..], ["--debug"]);
        assert_eq!(
            spec.environment,
            [
                ("SSL_CERT_DIR".to_string(), "/mine".to_string()),
                ("B".to_string(), "ok".to_string())
            ]
        );
    }
}
