//! `Collective` over MPI (the `mpi` feature, through rsmpi): the transport of data-parallel
//! training (`runtime::distributed`).
//!
//! The gradient sum is not `MPI_Allreduce`: MPI lets an implementation sum in any order, and
//! even differently on different ranks. Instead each rank owns a contiguous segment of the
//! buffer; an all-to-all sends every rank's piece of each segment to its owner, the owner sums
//! its segment in rank order (f64, weighted, rounded once), and an all-gather returns the sums.
//! That is a reduce-scatter plus an all-gather, the traffic of a ring allreduce (each rank
//! sends and receives about 2·(N−1)/N of the buffer), with one fixed order of addition.

use std::cell::RefCell;

use ::mpi::Count;
use ::mpi::datatype::{Partition, PartitionMut};
use ::mpi::environment::Universe;
use ::mpi::topology::{Communicator, SimpleCommunicator};
use ::mpi::traits::{CommunicatorCollectives, Root};

use super::distributed::{Collective, shard};

/// The job's processes (`MPI_COMM_WORLD`). MPI is finalized when this is dropped.
pub struct Mpi {
    world: SimpleCommunicator,
    _universe: Universe,
    /// The exchange's buffers, made at the first step and reused (a step does not allocate).
    exchange: RefCell<Exchange>,
}

/// What `weighted_sum` needs for buffers of `len` values: the all-to-all's counts and
/// displacements (sent and received), the pieces received and this rank's sums.
#[derive(Default)]
struct Exchange {
    len: usize,
    send: (Vec<Count>, Vec<Count>),
    recv: (Vec<Count>, Vec<Count>),
    pieces: Vec<f32>,
    sums: Vec<f32>,
}

impl Mpi {
    /// Starts MPI; `None` when it was already started in this process or cannot start.
    pub fn start() -> Option<Mpi> {
        let universe = ::mpi::initialize()?;
        Some(Mpi {
            world: universe.world(),
            _universe: universe,
            exchange: RefCell::default(),
        })
    }

    /// Ends every rank of the job with `code` (`MPI_Abort`): a rank that cannot go on must not
    /// leave the others waiting in a collective.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

/// Counts and displacements of `parts` consecutive pieces of the given sizes.
fn partition(sizes: impl Iterator<Item = usize>) -> (Vec<Count>, Vec<Count>) {
    let counts: Vec<Count> = sizes.map(|n| n as Count).collect();
    let displs = counts
        .iter()
        .scan(0, |at, &n| {
            let here = *at;
            *at += n;
            Some(here)
        })
        .collect();
    (counts, displs)
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn ranks(&self) -> usize {
        self.world.size() as usize
    }

    fn weighted_sum(&self, values: &mut [f32], weights: &[f64], weighted: usize) {
        let (ranks, rank) = (self.ranks(), self.rank());
        let segment = |r: usize| shard(values.len(), ranks, r);
        let mine = segment(rank);
        let mut exchange = self.exchange.borrow_mut();
        let ex = &mut *exchange;
        if ex.len != values.len() || ex.send.0.len() != ranks {
            // To each rank its segment of this rank's values; from each rank its piece of mine.
            ex.len = values.len();
            ex.send = partition((0..ranks).map(|r| segment(r).len()));
            ex.recv = partition((0..ranks).map(|_| mine.len()));
            ex.pieces = vec![0.0f32; mine.len() * ranks];
            ex.sums = vec![0.0f32; mine.len()];
        }
        {
            let send = Partition::new(&values[..], &ex.send.0[..], &ex.send.1[..]);
            let mut recv = PartitionMut::new(&mut ex.pieces[..], &ex.recv.0[..], &ex.recv.1[..]);
            self.world.all_to_all_varcount_into(&send, &mut recv);
        }
        for (i, sum_out) in ex.sums.iter_mut().enumerate() {
            let weighs = mine.start + i < weighted;
            let mut sum = 0.0f64;
            for (r, weight) in weights.iter().enumerate() {
                let value = f64::from(ex.pieces[r * mine.len() + i]);
                sum += if weighs { weight * value } else { value };
            }
            *sum_out = sum as f32;
        }
        let mut all = PartitionMut::new(values, &ex.send.0[..], &ex.send.1[..]);
        self.world.all_gather_varcount_into(&ex.sums[..], &mut all);
    }

    fn all_gather(&self, value: u64) -> Vec<u64> {
        let mut all = vec![0u64; self.ranks()];
        self.world.all_gather_into(&value, &mut all[..]);
        all
    }

    fn broadcast(&self, values: &mut [f64]) {
        self.world.process_at_rank(0).broadcast_into(values);
    }

    fn gather(&self, values: &[f32], counts: &[usize]) -> Vec<f32> {
        let root = self.world.process_at_rank(0);
        if self.rank() != 0 {
            root.gather_varcount_into(values);
            return Vec::new();
        }
        let (counts, displs) = partition(counts.iter().copied());
        let mut all = vec![0.0f32; counts.iter().map(|&n| n as usize).sum()];
        let mut recv = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
        root.gather_varcount_into_root(values, &mut recv);
        all
    }
}
