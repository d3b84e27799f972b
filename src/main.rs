//! The `sluice` command: check, compile and run Sluice programs.

mod bench;
mod ctl;
mod native;
mod run;
mod serve;

use clap::{Parser, Subcommand, ValueEnum};
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
        Command::Ctl(args) => ctl::ctl(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Reads a program, printing diagnostics; None if it has errors.
pub fn load_program(
    path: &std::path::Path,
    color: bool,
) -> anyhow::Result<Option<sluice_compiler::Compiled>> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let name = path.display().to_string();
    match sluice_compiler::compile(&source) {
        Ok(c) => {
            if !c.warnings.is_empty() {
                eprint!(
                    "{}",
                    sluice_lang::render(&c.warnings, &name, &source, color)
                );
            }
            Ok(Some(c))
        }
        Err(e) => {
            eprint!(
                "{}",
                sluice_lang::render(&e.diagnostics, &name, &source, color)
            );
            let n = e.diagnostics.iter().filter(|d| d.is_error()).count();
            eprintln!(
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
            let source = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            match sluice_lang::parse(&source) {
                Ok(ast) => {
                    println!("{ast:#?}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(d) => {
                    eprint!(
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
                Emit::Ir => print!("{}", sluice_compiler::print::print(&c.ir)),
                _ => {
                    let jit =
                        sluice_compiler::jit::JitProgram::compile(&c.ir, matches!(emit, Emit::Asm))
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                    match emit {
                        Emit::Clif => print!("{}", jit.clif),
                        _ => match &jit.asm {
                            Some(a) => print!("{a}"),
                            None => anyhow::bail!("Cranelift cannot disassemble for this machine"),
                        },
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
