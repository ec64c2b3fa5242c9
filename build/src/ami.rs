//! `corral-build ami`: `dist/corral.img` to a registered AMI. Two ways to the snapshot:
//! coldsnap (EBS direct APIs, no bucket) or the AWS CLI (upload to S3, `import-snapshot`,
//! wait for the import). Then `register-image`: x86_64, HVM, ENA, boot mode
//! `uefi-preferred` (the image boots with BIOS and UEFI), IMDSv2 required. docs/ec2.md
//! walks through it. The commands are built here as argument lists, so what is sent to
//! AWS is unit-tested; this machine cannot reach AWS.

use crate::error::BuildError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How the image becomes a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uploader {
    /// `coldsnap upload --wait`: prints the snapshot ID.
    Coldsnap,
    /// `aws s3 cp` into this bucket, then `aws ec2 import-snapshot`.
    S3 { bucket: String },
}

/// What to register.
#[derive(Debug, Clone)]
pub struct AmiOptions {
    pub image: PathBuf,
    pub name: String,
    pub description: String,
    /// AWS region (`--region`); the CLI's default when `None`.
    pub region: Option<String>,
    pub uploader: Uploader,
}

/// The root device name the AMI declares.
pub const ROOT_DEVICE: &str = "/dev/xvda";

fn with_region(mut args: Vec<String>, region: &Option<String>) -> Vec<String> {
    if let Some(r) = region {
        args.extend(["--region".to_string(), r.clone()]);
    }
    args
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The S3 key the image is uploaded under.
pub fn s3_key(opts: &AmiOptions) -> String {
    format!("corral/{}.img", opts.name)
}

/// The upload: for coldsnap, the only command before registering; for S3, the copy.
pub fn upload_args(opts: &AmiOptions) -> Vec<String> {
    let image = opts.image.display().to_string();
    match &opts.uploader {
        Uploader::Coldsnap => {
            let mut a = strings(&["coldsnap"]);
            if let Some(r) = &opts.region {
                a.extend(["--region".to_string(), r.clone()]);
            }
            a.extend(strings(&["upload", "--wait", "--description"]));
            a.push(opts.description.clone());
            a.push(image);
            a
        }
        Uploader::S3 { bucket } => with_region(
            vec![
                "aws".into(),
                "s3".into(),
                "cp".into(),
                image,
                format!("s3://{bucket}/{}", s3_key(opts)),
            ],
            &opts.region,
        ),
    }
}

/// `aws ec2 import-snapshot` of the uploaded object (S3 only).
pub fn import_args(opts: &AmiOptions, bucket: &str) -> Vec<String> {
    with_region(
        vec![
            "aws".into(),
            "ec2".into(),
            "import-snapshot".into(),
            "--description".into(),
            opts.description.clone(),
            "--disk-container".into(),
            format!(
                "Format=RAW,UserBucket={{S3Bucket={bucket},S3Key={}}}",
                s3_key(opts)
            ),
            "--output".into(),
            "json".into(),
        ],
        &opts.region,
    )
}

/// `aws ec2 describe-import-snapshot-tasks` for one task.
pub fn describe_args(opts: &AmiOptions, task: &str) -> Vec<String> {
    with_region(
        strings(&[
            "aws",
            "ec2",
            "describe-import-snapshot-tasks",
            "--import-task-ids",
            task,
            "--output",
            "json",
        ]),
        &opts.region,
    )
}

/// `aws ec2 register-image` for a snapshot.
pub fn register_args(opts: &AmiOptions, snapshot: &str) -> Vec<String> {
    with_region(
        vec![
            "aws".into(),
            "ec2".into(),
            "register-image".into(),
            "--name".into(),
            opts.name.clone(),
            "--description".into(),
            opts.description.clone(),
            "--architecture".into(),
            "x86_64".into(),
            "--virtualization-type".into(),
            "hvm".into(),
            "--ena-support".into(),
            "--boot-mode".into(),
            "uefi-preferred".into(),
            "--imds-support".into(),
            "v2.0".into(),
            "--root-device-name".into(),
            ROOT_DEVICE.into(),
            "--block-device-mappings".into(),
            format!(
                "DeviceName={ROOT_DEVICE},Ebs={{SnapshotId={snapshot},VolumeType=gp3,DeleteOnTermination=true}}"
            ),
            "--output".into(),
            "json".into(),
        ],
        &opts.region,
    )
}

fn parse(text: &str, what: &str) -> Result<serde_json::Value, BuildError> {
    serde_json::from_str(text).map_err(|e| BuildError::Command {
        command: what.to_string(),
        detail: format!("unexpected output ({e}): {text}"),
    })
}

/// The text at `key` in the JSON answer of `command`.
fn text_field(output: &str, command: &str, key: &str) -> Result<String, BuildError> {
    parse(output, command)?
        .get(key)
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| BuildError::Command {
            command: command.into(),
            detail: format!("no {key} in {output}"),
        })
}

/// The task ID from import-snapshot's answer.
pub fn import_task_id(output: &str) -> Result<String, BuildError> {
    text_field(output, "aws ec2 import-snapshot", "ImportTaskId")
}

/// Where an import stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Import {
    Running { status: String, progress: String },
    Done { snapshot: String },
    Failed(String),
}

/// The state of the one task in describe-import-snapshot-tasks' answer.
pub fn import_state(output: &str) -> Result<Import, BuildError> {
    let v = parse(output, "aws ec2 describe-import-snapshot-tasks")?;
    let detail = v
        .get("ImportSnapshotTasks")
        .and_then(|t| t.get(0))
        .and_then(|t| t.get("SnapshotTaskDetail"))
        .ok_or_else(|| BuildError::Command {
            command: "aws ec2 describe-import-snapshot-tasks".into(),
            detail: format!("no task in {output}"),
        })?;
    let text = |k: &str| {
        detail
            .get(k)
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string()
    };
    Ok(match text("Status").as_str() {
        "completed" => Import::Done {
            snapshot: text("SnapshotId"),
        },
        "deleted" | "deleting" => Import::Failed(text("StatusMessage")),
        status => Import::Running {
            status: status.to_string(),
            progress: text("Progress"),
        },
    })
}

/// The snapshot ID in coldsnap's output (`snap-...`, on its own line).
pub fn coldsnap_snapshot(output: &str) -> Option<String> {
    output
        .split_whitespace()
        .find(|w| w.starts_with("snap-"))
        .map(str::to_string)
}

/// The AMI ID from register-image's answer.
pub fn image_id(output: &str) -> Result<String, BuildError> {
    text_field(output, "aws ec2 register-image", "ImageId")
}

fn run(args: &[String]) -> Result<String, BuildError> {
    let (program, rest) = args.split_first().ok_or_else(|| BuildError::Command {
        command: String::new(),
        detail: "empty command".into(),
    })?;
    corral_host::command::output(Command::new(program).args(rest)).map_err(|e| match e {
        corral_host::HostError::ProgramMissing { program } => BuildError::MissingTool {
            package: if program == "aws" {
                "awscli".into()
            } else {
                "coldsnap (cargo install coldsnap; not in Debian)".into()
            },
            tool: program,
        },
        e => e.into(),
    })
}

/// Uploads, waits for the snapshot, registers; returns the AMI ID.
pub fn make_ami(opts: &AmiOptions) -> Result<String, BuildError> {
    if !Path::new(&opts.image).exists() {
        return Err(BuildError::Command {
            command: "corral-build ami".into(),
            detail: format!(
                "'{}' is missing; run `make dist` first",
                opts.image.display()
            ),
        });
    }
    let step = crate::progress::Step::start("uploading the disk image", 0);
    let upload = run(&upload_args(opts))?;
    let snapshot = match &opts.uploader {
        Uploader::Coldsnap => coldsnap_snapshot(&upload).ok_or_else(|| BuildError::Command {
            command: "coldsnap upload".into(),
            detail: format!("no snapshot ID in its output: {upload}"),
        })?,
        Uploader::S3 { bucket } => {
            let task = import_task_id(&run(&import_args(opts, bucket))?)?;
            loop {
                match import_state(&run(&describe_args(opts, &task))?)? {
                    Import::Done { snapshot } => break snapshot,
                    Import::Failed(why) => {
                        return Err(BuildError::Command {
                            command: format!("import-snapshot {task}"),
                            detail: why,
                        })
                    }
                    Import::Running { status, progress } => {
                        step.set_detail(&format!("importing the snapshot: {status} {progress}%"));
                        std::thread::sleep(Duration::from_secs(15));
                    }
                }
            }
        }
    };
    step.done(&format!("snapshot {snapshot}"));
    let ami = image_id(&run(&register_args(opts, &snapshot))?)?;
    Ok(ami)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(uploader: Uploader) -> AmiOptions {
        AmiOptions {
            image: "dist/corral.img".into(),
            name: "corral-0.1.0".into(),
            description: "Corral 0.1.0".into(),
            region: Some("eu-west-1".into()),
            uploader,
        }
    }

    #[test]
    fn coldsnap_uploads_and_waits() {
        assert_eq!(
            upload_args(&opts(Uploader::Coldsnap)).join(" "),
            "coldsnap --region eu-west-1 upload --wait --description Corral 0.1.0 dist/corral.img"
        );
        assert_eq!(
            coldsnap_snapshot("Uploading...\nsnap-0123456789abcdef0\n").as_deref(),
            Some("snap-0123456789abcdef0")
        );
    }

    #[test]
    fn s3_uploads_then_imports_a_raw_disk() {
        let o = opts(Uploader::S3 {
            bucket: "my-bucket".into(),
        });
        assert_eq!(
            upload_args(&o).join(" "),
            "aws s3 cp dist/corral.img s3://my-bucket/corral/corral-0.1.0.img --region eu-west-1"
        );
        let import = import_args(&o, "my-bucket").join(" ");
        assert!(import.contains(
            "--disk-container Format=RAW,UserBucket={S3Bucket=my-bucket,S3Key=corral/corral-0.1.0.img}"
        ));
        assert_eq!(
            import_task_id(r#"{"ImportTaskId": "import-snap-1234", "Description": "x"}"#).unwrap(),
            "import-snap-1234"
        );
        assert!(describe_args(&o, "import-snap-1234")
            .join(" ")
            .contains("--import-task-ids import-snap-1234"));
    }

    #[test]
    fn import_states_are_read() {
        let running = r#"{"ImportSnapshotTasks":[{"SnapshotTaskDetail":{"Status":"active","Progress":"42"}}]}"#;
        assert_eq!(
            import_state(running).unwrap(),
            Import::Running {
                status: "active".into(),
                progress: "42".into()
            }
        );
        let done = r#"{"ImportSnapshotTasks":[{"SnapshotTaskDetail":{"Status":"completed","SnapshotId":"snap-1"}}]}"#;
        assert_eq!(
            import_state(done).unwrap(),
            Import::Done {
                snapshot: "snap-1".into()
            }
        );
        let gone = r#"{"ImportSnapshotTasks":[{"SnapshotTaskDetail":{"Status":"deleted","StatusMessage":"ClientError: unsupported format"}}]}"#;
        assert!(
            matches!(import_state(gone).unwrap(), Import::Failed(m) if m.contains("unsupported"))
        );
        assert!(import_state("not json").is_err());
        assert!(import_state("{}").is_err());
    }

    #[test]
    fn the_ami_is_uefi_preferred_with_ena_and_imdsv2() {
        let args = register_args(&opts(Uploader::Coldsnap), "snap-1").join(" ");
        for part in [
            "--architecture x86_64",
            "--virtualization-type hvm",
            "--ena-support",
            "--boot-mode uefi-preferred",
            "--imds-support v2.0",
            "--root-device-name /dev/xvda",
            "DeviceName=/dev/xvda,Ebs={SnapshotId=snap-1,VolumeType=gp3,DeleteOnTermination=true}",
            "--region eu-west-1",
        ] {
            assert!(args.contains(part), "{part} missing from {args}");
        }
        assert_eq!(image_id(r#"{"ImageId":"ami-0abc"}"#).unwrap(), "ami-0abc");
    }
}
