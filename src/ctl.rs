//! `sluice ctl`: the control-plane client of a running switch.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CtlArgs {
    /// The switch's control socket.
    #[arg(long, default_value = "sluice.sock")]
    control: PathBuf,
    /// Run the commands of a file, one per line.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// A command and its arguments, in simple_switch_CLI syntax.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn ctl(_args: &CtlArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not written yet")
}
