//! The `sluice` command: check, compile and run Sluice programs.

mod bench;
mod ctl;
mod explain;
mod fleet;
mod input;
mod native;
mod out;
mod progress;
mod run;
mod serve;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use out::{err, errln, out, outln};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A P4-style programmable software switch"
)]
struct Cli {
    /// When to color diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    color: Color,
    /// The largest text file (program, entries, script) read, in bytes or with K, M or G.
    #[arg(long, value_name = "SIZE", value_parser = input::parse_size,
          default_value = "1G", global = true)]
    max_text_size: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Check a program and print its diagnostics.
    Check { program: PathBuf },
    /// Compile a program and print one of its stages.
    Compile {
        program: PathBuf,
        /// The stage to print.
        #[arg(long, value_enum, default_value_t = Emit::Ir)]
        emit: Emit,
    },
    /// Run a program over a capture, writing what leaves port N to DIR/port-N.pcap.
    Run(run::RunArgs),
    /// Measure packets per second: JIT, interpreter, hand-written reference, plain copy.
    Bench(bench::BenchArgs),
    /// Run a switch: replay captures through it while a control socket takes commands.
    Serve(serve::ServeArgs),
    /// Send commands to a running switch (one, a file of them, or an interactive shell).
    Ctl(ctl::CtlArgs),
    /// Explain an error code (E0102, ...): what it means, an example, the fix.
    Explain {
        /// The code, as diagnostics print it.
        code: String,
    },
    /// Print the token that lets a VM's tunnel packets in, or a VM talk to a destination,
    /// until an expiry (the registry's side of authenticated tunnels).
    Token(TokenArgs),
    /// Make an X25519 key pair for sealed tunnels, or print a private key's public key.
    Keygen(KeygenArgs),
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["out", "public"]))]
struct KeygenArgs {
    /// Write a new private key to this file (which must not exist; mode 0600) and print its
    /// public key.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the public key of the private key in this file.
    #[arg(long, value_name = "FILE")]
    public: Option<PathBuf>,
}

/// `sluice keygen`: the private key goes to a new file readable only by its owner, never to
/// the terminal; the public key is printed as `0x` and 64 hex digits.
fn keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    use sluice_runtime::crypto::PrivateKey;
    let key = match (&args.out, &args.public) {
        (Some(path), _) => {
            let key = PrivateKey::generate()
                .map_err(|_| anyhow::anyhow!("no random numbers from the operating system"))?;
            write_private_key(path, &key)?;
            key
        }
        (None, Some(path)) => {
            sluice_runtime::command::read_private_key(path).map_err(anyhow::Error::msg)?
        }
        (None, None) => anyhow::bail!("give --out FILE or --public FILE"),
    };
    outln!("{}", sluice_defs::secret::to_hex(&key.public()))?;
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` (never an existing file, never through a link) with mode 0600 and writes
/// the key into it.
fn write_private_key(
    path: &std::path::Path,
    key: &sluice_runtime::crypto::PrivateKey,
) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    let mut text = sluice_defs::secret::to_hex(&key.to_bytes());
    text.push('\n');
    let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
    zeroize::Zeroize::zeroize(&mut text);
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        anyhow::bail!("cannot write {}: {e}", path.display());
    }
    Ok(())
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("key").required(true).args(["secret", "secret_file"]))]
#[command(group = clap::ArgGroup::new("for").required(true).args(["vm", "src"]))]
struct TokenArgs {
    /// The secret, as `0x` and 32 hex digits (the 16 key bytes in order).
    #[arg(long)]
    secret: Option<String>,
    /// A file holding the secret in the same form, so that it need not stand in a command line.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// The expiry, in seconds since the Unix epoch.
    #[arg(long)]
    expiry: u32,
    /// The VM's IPv4 address: a token for its tunnel packets (programs/vnet_auth.sluice).
    #[arg(long)]
    vm: Option<std::net::Ipv4Addr>,
    /// The VM that sends: a token for the pair (--src, --dst) (programs/gateway_secure.sluice).
    #[arg(long, requires = "dst", conflicts_with = "vm")]
    src: Option<std::net::Ipv4Addr>,
    /// The destination the VM may talk to.
    #[arg(long, requires = "src", conflicts_with = "vm")]
    dst: Option<std::net::Ipv4Addr>,
}

/// token = SipHash-2-4(secret, the expiry as 4 bytes, then the VM's address as 4 bytes, in
/// network order), as programs/vnet_auth.sluice checks it; or for a pair, the expiry, the
/// source, then the destination, as programs/gateway_secure.sluice checks it.
fn token(args: &TokenArgs) -> anyhow::Result<ExitCode> {
    let text = match (&args.secret, &args.secret_file) {
        (Some(s), _) => s.clone(),
        (None, Some(f)) => input::read_secret_file(f).map_err(anyhow::Error::msg)?,
        (None, None) => anyhow::bail!("give --secret or --secret-file"),
    };
    let key = sluice_defs::secret::parse_secret(&text)
        .map_err(|_| anyhow::anyhow!("the secret must be 0x followed by exactly 32 hex digits"))?;
    let mut msg = args.expiry.to_be_bytes().to_vec();
    match (args.vm, args.src, args.dst) {
        (Some(vm), _, _) => msg.extend_from_slice(&vm.octets()),
        (None, Some(src), Some(dst)) => {
            msg.extend_from_slice(&src.octets());
            msg.extend_from_slice(&dst.octets());
        }
        _ => anyhow::bail!("give --vm, or --src and --dst"),
    }
    outln!("0x{:016x}", sluice_runtime::hash::siphash24(&key, &msg))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy, ValueEnum)]
enum Emit {
    /// The syntax tree.
    Ast,
    /// The pipeline IR.
    Ir,
    /// The Cranelift IR of the JIT-compiled pipeline.
    Clif,
    /// The machine code, as Cranelift prints it.
    Asm,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    input::set_max_text(cli.max_text_size);
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let result = match cli.command {
        Command::Check { program } => check(&program, color),
        Command::Compile { program, emit } => compile(&program, emit, color),
        Command::Run(args) => run::run(&args, color),
        Command::Bench(args) => bench::bench(&args, color),
        Command::Serve(args) => serve::serve(&args, color),
        Command::Ctl(args) => ctl::ctl(&args, color),
        Command::Token(args) => token(&args),
        Command::Keygen(args) => keygen(&args),
        Command::Explain { code } => explain::explain(&code),
    };
    match result {
        Ok(code) => code,
        // The reader of standard output went away (`| head`): end quietly, as Unix tools do.
        Err(e) if matches!(e.downcast_ref(), Some(out::OutputError::Closed)) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Creates the output directory (and its parents); a path that exists and is not a
/// directory is an error that says so.
pub fn make_out_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if let Ok(m) = std::fs::metadata(dir) {
        if !m.is_dir() {
            anyhow::bail!("--out-dir {}: not a directory", dir.display());
        }
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--out-dir {}: cannot create it", dir.display()))
}

/// Reads a program, printing diagnostics; None if it has errors.
pub fn load_program(
    path: &std::path::Path,
    color: bool,
) -> anyhow::Result<Option<sluice_compiler::Compiled>> {
    let source = input::read_text(path, "program")?;
    let name = path.display().to_string();
    match sluice_compiler::compile(&source) {
        Ok(c) => {
            if !c.warnings.is_empty() {
                err!(
                    "{}",
                    sluice_lang::render(&c.warnings, &name, &source, color)
                );
            }
            Ok(Some(c))
        }
        Err(e) => {
            err!(
                "{}",
                sluice_lang::render(&e.diagnostics, &name, &source, color)
            );
            let n = e.diagnostics.iter().filter(|d| d.is_error()).count();
            errln!(
                "error: could not compile `{name}` ({n} error{})",
                if n == 1 { "" } else { "s" }
            );
            Ok(None)
        }
    }
}

fn check(path: &std::path::Path, color: bool) -> anyhow::Result<ExitCode> {
    Ok(match load_program(path, color)? {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    })
}

fn compile(path: &std::path::Path, emit: Emit, color: bool) -> anyhow::Result<ExitCode> {
    match emit {
        Emit::Ast => {
            let source = input::read_text(path, "program")?;
            match sluice_lang::parse(&source) {
                Ok(ast) => {
                    out!("{}", sluice_lang::ast::print::print(&ast))?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(d) => {
                    err!(
                        "{}",
                        sluice_lang::render(&d, &path.display().to_string(), &source, color)
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Emit::Ir | Emit::Clif | Emit::Asm => {
            let Some(c) = load_program(path, color)? else {
                return Ok(ExitCode::FAILURE);
            };
            match emit {
                Emit::Ir => out!("{}", sluice_compiler::print::print(&c.ir))?,
                _ => {
                    let jit = sluice_compiler::jit::JitProgram::compile(
                        &c.ir,
                        matches!(emit, Emit::Asm),
                    )?;
                    match emit {
                        Emit::Clif => out!("{}", jit.clif)?,
                        _ => match &jit.asm {
                            Some(a) => out!("{a}")?,
                            None => anyhow::bail!("Cranelift cannot disassemble for this machine"),
                        },
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
