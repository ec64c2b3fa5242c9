//! `corral.state`: the state partition.

use super::*;

/// `corral.state`: the state partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct State {
    /// The device, `LABEL=CORRAL_STATE` by default.
    #[serde(default)]
    pub dev: Option<String>,
    #[serde(default)]
    pub fstype: Option<String>,
    /// Devices that may be formatted when they are blank.
    #[serde(default, deserialize_with = "null_is_default")]
    pub autoformat: Vec<String>,
    #[serde(default)]
    pub wait: Option<bool>,
    #[serde(default)]
    pub required: Option<bool>,
    #[serde(default)]
    pub formatzero: Option<bool>,
}
