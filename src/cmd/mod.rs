//! One module per subcommand: wiring library pieces to the terminal.

pub mod analyze;
pub mod live;
pub mod report;
pub mod rules;
pub mod site;

/// `portmatrix … | head` closes our stdout early: that is a normal end, not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
