//! Masked recurrent parity with PyTorch (issue 17): from the same initial weights, on the same
//! batches in the same order, the compiled training step of `embedding(mask_zero: true)` →
//! `lstm` → `dense` reports the same per-step loss as PyTorch running `nn.LSTM` over
//! `pack_padded_sequence` (padded steps never run) with Adam in Keras's form: within 1e-4
//! relative of PyTorch's float64 run at every one of 100 steps, and of its float32 run while
//! that run tracks float64. The final weights (the embedding table's included) are held to the
//! float64 run's.
//!
//! The fixture in `tests/fixtures/parity_mask_seq/` (512 token sequences of 3 to 20 real tokens
//! padded with 0 to 20, the batch order, the program, initial and final weights, and each
//! peer's per-step losses) is written once by `bench/parity/make_mask_seq_fixtures.py`; see
//! `docs/parity.md`.

mod parity_fixture;

use std::path::Path;

use parity_fixture::networks::{Networks, Peers, compare_losses, train_all};

const PEERS: Peers = Peers {
    peer: "torch_keras_adam",
    exact: "torch_keras_adam_f64",
    // The cell written out step by step with an explicit mask (Keras's rule: a padded step
    // keeps the state and the cell state): a second float32 implementation, reported.
    references: &["torch_keras_adam_cell"],
    tolerance: 1e-4,
};
/// Largest absolute difference of any final weight from the float64 run's.
const FINAL_WEIGHT_TOLERANCE: f32 = 1e-5;

#[test]
fn masked_lstm_losses_match_pytorch_packed_sequences_step_by_step() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity_mask_seq");
    let fixture = Networks::load(dir, "ids.i32", "sequence");
    let net = "masked_lstm";
    let mut trainer = fixture.trainer(net);
    let losses = train_all(&fixture, &mut trainer);
    let finals = compare_losses(&fixture, net, &losses, &trainer, &PEERS);
    let (_, worst, name) = finals
        .iter()
        .find(|(peer, ..)| peer == PEERS.exact)
        .expect("the float64 run's final weights");
    assert!(
        *worst <= FINAL_WEIGHT_TOLERANCE,
        "{net}: final {name} differs from the float64 run's by {worst:e} \
         (tolerance {FINAL_WEIGHT_TOLERANCE:e})"
    );
}
