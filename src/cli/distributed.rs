//! `kiln run --distributed`: starting MPI and ending the job when a rank fails. The training
//! itself is `driver::run_distributed`; this is the process side of it.

/// This process's place in an MPI job.
#[cfg(feature = "mpi")]
pub struct Ranks(kiln::runtime::mpi::Mpi);

/// Built without the `mpi` feature there is no job to be part of.
#[cfg(not(feature = "mpi"))]
pub enum Ranks {}

#[cfg(feature = "mpi")]
pub fn start() -> Result<Ranks, String> {
    kiln::runtime::mpi::Mpi::start()
        .map(Ranks)
        .ok_or_else(|| "error: --distributed: MPI could not be started".to_string())
}

#[cfg(not(feature = "mpi"))]
pub fn start() -> Result<Ranks, String> {
    Err(
        "error: --distributed: this kiln was built without MPI; build it with \
         `cargo build --release --features mpi` (docs/distributed.md)"
            .to_string(),
    )
}

#[cfg(feature = "mpi")]
impl Ranks {
    pub fn collective(&self) -> &dyn kiln::runtime::distributed::Collective {
        &self.0
    }

    pub fn rank(&self) -> usize {
        use kiln::runtime::distributed::Collective;
        self.0.rank()
    }

    /// Shows `message` (naming the rank unless it is rank 0, whose output is the job's) and
    /// ends every rank: the others may be waiting in a collective for this one.
    pub fn fail(&self, message: &str) -> ! {
        use kiln::runtime::distributed::Collective;
        let rank = self.0.rank();
        if rank == 0 {
            eprintln!("{message}");
        } else {
            eprintln!("rank {rank} of {}: {message}", self.0.ranks());
        }
        self.0.abort(1)
    }
}

#[cfg(not(feature = "mpi"))]
impl Ranks {
    pub fn collective(&self) -> &dyn kiln::runtime::distributed::Collective {
        match *self {}
    }

    pub fn rank(&self) -> usize {
        match *self {}
    }

    pub fn fail(&self, _message: &str) -> ! {
        match *self {}
    }
}
