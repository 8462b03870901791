//! Commands connected stdout → stdin, each pipe handed straight from one command
//! to the next (no copy through the interpreter).

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::child::{stop_error, Child};
use super::error::{check_status, CommandError};
use super::io::{self, InPipe, OutPipe};
use super::{start, CommandSpec, Stdio};
use crate::os::process::{ExitStatus, Pid};

/// Running pipeline stages, first to last.
#[derive(Debug)]
pub struct Pipeline {
    stages: Vec<Child>,
}

/// How every stage of a pipeline ended, and what the last one wrote.
#[derive(Debug)]
pub struct PipelineOutput {
    pub pids: Vec<Pid>,
    pub commands: Vec<String>,
    pub statuses: Vec<ExitStatus>,
    /// The last stage's stdout (empty when not piped).
    pub stdout: Vec<u8>,
    /// Each stage's stderr (empty when not piped).
    pub stderrs: Vec<Vec<u8>>,
}

impl PipelineOutput {
    /// `check = true`: the first stage that failed, as an error with the tail of
    /// its stderr. A stage before the last killed by SIGPIPE is not a failure:
    /// that is how `producer | head` normally ends.
    pub fn check(&self) -> Result<(), CommandError> {
        let last = self.statuses.len().saturating_sub(1);
        let stages = self.statuses.iter().zip(&self.commands).zip(&self.stderrs);
        for (i, ((&status, command), stderr)) in stages.enumerate() {
            if i < last && status == ExitStatus::Signal(libc::SIGPIPE) {
                continue;
            }
            check_status(command, status, stderr)?;
        }
        Ok(())
    }
}

/// Starts `specs` connected stdout → stdin. The first stage's stdin, the last
/// one's stdout and every stage's stderr are as their specs say; the inner
/// stdins and stdouts in the specs are ignored. Every program is looked for
/// before any starts; if one fails to start, those already started are killed.
pub fn spawn_pipeline(specs: Vec<CommandSpec>) -> Result<Pipeline, CommandError> {
    if specs.is_empty() {
        return Err(CommandError::Usage("a pipeline needs a command".into()));
    }
    let prepared = specs
        .iter()
        .map(CommandSpec::prepare)
        .collect::<Result<Vec<_>, _>>()?;
    let last = specs.len() - 1;
    let mut stages: Vec<Child> = Vec::with_capacity(specs.len());
    let mut next_stdin: Option<OwnedFd> = None;
    for (i, (spec, prep)) in specs.into_iter().zip(&prepared).enumerate() {
        let started = (|| {
            let stdin = match next_stdin.take() {
                Some(fd) => Stdio::Fd(fd),
                None => spec.stdin,
            };
            let stdout = if i == last {
                spec.stdout
            } else {
                let (r, w) = os_pipe::pipe().map_err(|e| CommandError::Spawn {
                    command: prep.display.clone(),
                    source: e,
                })?;
                next_stdin = Some(r.into());
                Stdio::Fd(w.into())
            };
            start(prep, stdin, stdout, spec.stderr)
        })();
        match started {
            Ok(child) => stages.push(child),
            Err(e) => {
                for stage in &mut stages {
                    stage.kill_and_reap();
                }
                return Err(e);
            }
        }
    }
    Ok(Pipeline { stages })
}

impl Pipeline {
    pub fn stages(&self) -> &[Child] {
        &self.stages
    }

    /// The stages, e.g. to read the last one's stdout line by line.
    pub fn stages_mut(&mut self) -> &mut [Child] {
        &mut self.stages
    }

    /// "a | b | c", for messages.
    pub fn command(&self) -> String {
        let commands: Vec<&str> = self.stages.iter().map(|s| s.command()).collect();
        commands.join(" | ")
    }

    /// `Child::communicate` for the whole pipeline: input to the first stage,
    /// the last one's stdout and every stage's stderr read, every stage waited
    /// for. Same rules on `Timeout`/`Interrupted`: nothing is lost, call again.
    pub fn communicate(
        &mut self,
        input: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<(Vec<u8>, Vec<Vec<u8>>), CommandError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let command = self.command();
        let last = self.stages.len() - 1;
        let fresh = input.unwrap_or_default();
        let mut first_stdin: Option<&mut Option<InPipe>> = None;
        let mut outs: Vec<&mut OutPipe> = Vec::new();
        for (i, stage) in self.stages.iter_mut().enumerate() {
            let Child {
                stdin,
                stdout,
                stderr,
                fed,
                ..
            } = stage;
            if i == 0 {
                if !fresh.is_empty() {
                    if *fed {
                        return Err(CommandError::Usage(format!(
                            "`{command}` was already given its input by an earlier communicate"
                        )));
                    }
                    if stdin.is_none() {
                        return Err(CommandError::Usage(format!(
                            "stdin of `{command}` is not a pipe"
                        )));
                    }
                }
                *fed = true;
                first_stdin = Some(stdin);
            }
            if i == last {
                outs.extend(stdout.as_mut());
            }
            outs.extend(stderr.as_mut());
        }
        let mut no_input = None;
        let input = first_stdin.unwrap_or(&mut no_input);
        io::pump(input, fresh, &mut outs, deadline)
            .and_then(|()| {
                self.stages
                    .iter_mut()
                    .try_for_each(|s| s.wait_until(deadline).map(|_| ()))
            })
            .map_err(|s| stop_error(s, &command, timeout, "talking to"))?;
        let stdout = self.stages[last]
            .stdout
            .as_mut()
            .map(OutPipe::take_all)
            .unwrap_or_default();
        let stderrs = self
            .stages
            .iter_mut()
            .map(|s| s.stderr.as_mut().map(OutPipe::take_all).unwrap_or_default())
            .collect();
        Ok((stdout, stderrs))
    }

    /// SIGKILL to every stage's group; our pipe ends closed; every stage reaped.
    pub fn kill_and_reap(&mut self) -> Vec<ExitStatus> {
        for stage in &self.stages {
            let _ = stage.kill();
        }
        self.stages.iter_mut().map(Child::kill_and_reap).collect()
    }

    /// Every stage's status, once `communicate` or a wait has seen it end.
    pub fn statuses(&self) -> Vec<Option<ExitStatus>> {
        self.stages.iter().map(Child::status).collect()
    }
}

/// `run` for a pipeline: starts `specs` connected stdout → stdin (see
/// [`spawn_pipeline`]), feeds `input` to the first (its stdin becomes a pipe when
/// there is input), and waits for every stage. A `timeout` kills every stage's
/// process group and returns `Timeout`; `on_interrupt` as for `run`.
pub fn run_pipeline(
    mut specs: Vec<CommandSpec>,
    input: Option<&[u8]>,
    timeout: Option<Duration>,
    on_interrupt: &mut dyn FnMut() -> bool,
) -> Result<PipelineOutput, CommandError> {
    if let (Some(first), Some(_)) = (specs.first_mut(), input) {
        first.stdin = Stdio::Pipe;
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut pipeline = spawn_pipeline(specs)?;
    let mut input = input;
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match pipeline.communicate(input.take(), left) {
            Ok((stdout, stderrs)) => {
                let stages = pipeline.stages();
                return Ok(PipelineOutput {
                    pids: stages.iter().map(Child::pid).collect(),
                    commands: stages.iter().map(|s| s.command().to_string()).collect(),
                    statuses: stages
                        .iter()
                        .map(|s| s.status().unwrap_or(ExitStatus::Code(0)))
                        .collect(),
                    stdout,
                    stderrs,
                });
            }
            Err(CommandError::Interrupted) if on_interrupt() => continue,
            Err(CommandError::Timeout { command, .. }) => {
                pipeline.kill_and_reap();
                return Err(CommandError::Timeout {
                    command,
                    after: timeout.unwrap_or_default(),
                });
            }
            Err(e) => {
                pipeline.kill_and_reap();
                return Err(e);
            }
        }
    }
}
