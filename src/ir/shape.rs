//! Shapes in the IR. The batch dimension stays symbolic all the way to native code, where it is a
//! runtime argument, so the last (smaller) batch of an epoch runs through the same code.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    /// Integer class labels.
    I32,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// The batch size, known only when a step runs.
    Batch,
    Fixed(usize),
}

impl Dim {
    /// The dimension's extent for a given batch size.
    pub fn resolve(self, batch: usize) -> usize {
        match self {
            Dim::Batch => batch,
            Dim::Fixed(n) => n,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Batch => write!(f, "B"),
            Dim::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// Row-major dimensions; an empty list is a scalar.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    pub fn scalar() -> Shape {
        Shape(Vec::new())
    }

    pub fn fixed(dims: &[usize]) -> Shape {
        Shape(dims.iter().map(|&n| Dim::Fixed(n)).collect())
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    /// Concrete extents for a given batch size.
    pub fn resolve(&self, batch: usize) -> Vec<usize> {
        self.0.iter().map(|d| d.resolve(batch)).collect()
    }

    pub fn numel(&self, batch: usize) -> usize {
        self.0.iter().map(|d| d.resolve(batch)).product()
    }

    /// `numel`, or `None` when it overflows (absurd dimensions from a user's program).
    pub fn checked_numel(&self, batch: usize) -> Option<usize> {
        self.0
            .iter()
            .try_fold(1usize, |n, d| n.checked_mul(d.resolve(batch)))
    }

    pub fn has_batch(&self) -> bool {
        self.0.contains(&Dim::Batch)
    }

    /// NumPy broadcasting of two shapes (trailing dimensions aligned; 1 stretches).
    pub fn broadcast(&self, other: &Shape) -> Option<Shape> {
        let rank = self.rank().max(other.rank());
        let mut out = Vec::with_capacity(rank);
        for i in 0..rank {
            let a = dim_from_end(self, rank - 1 - i);
            let b = dim_from_end(other, rank - 1 - i);
            out.push(match (a, b) {
                (a, b) if a == b => a,
                (Dim::Fixed(1), b) => b,
                (a, Dim::Fixed(1)) => a,
                _ => return None,
            });
        }
        Some(Shape(out))
    }

    /// Whether `self` can be broadcast to `target` (NumPy rules, one direction).
    pub fn broadcasts_to(&self, target: &Shape) -> bool {
        self.broadcast(target).as_ref() == Some(target)
    }
}

/// Whether `from` can be reshaped to `to` (`Op::Reshape`): the same elements in row-major order.
/// The batch dimension, being unknown, can only stay where it is: it appears at most once on each
/// side, and if on one side then as the leading dimension of both, so that a batch of any size
/// keeps its rows (`[B, 7, 7, 64] → [B, 3136]`, `[B, 784] → [B, 28, 28, 1]`).
pub fn reshape_rule(from: &Shape, to: &Shape) -> Result<(), String> {
    let batches = |s: &Shape| s.0.iter().filter(|&&d| d == Dim::Batch).count();
    let leading = |s: &Shape| s.0.first() == Some(&Dim::Batch);
    let (bf, bt) = (batches(from), batches(to));
    if bf > 1 || bt > 1 {
        return Err(format!(
            "cannot reshape {from} to {to}: the batch dimension appears more than once"
        ));
    }
    if bf + bt > 0 && !(leading(from) && leading(to)) {
        return Err(format!(
            "cannot reshape {from} to {to}: the batch dimension must lead on both sides"
        ));
    }
    // With the batch dimension leading on both sides, compare the rest; `numel(1)` counts it
    // as one.
    let (nf, nt) = (from.checked_numel(1), to.checked_numel(1));
    if nf.is_none() || nf != nt {
        return Err(format!(
            "cannot reshape {from} to {to}: the element counts differ"
        ));
    }
    Ok(())
}

/// The dimension `back` places from the end, treating missing leading dims as 1.
fn dim_from_end(shape: &Shape, back: usize) -> Dim {
    if back < shape.rank() {
        shape.0[shape.rank() - 1 - back]
    } else {
        Dim::Fixed(1)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

/// The type of an IR value: element type and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Shape,
}

impl TensorType {
    pub fn f32(shape: Shape) -> TensorType {
        TensorType {
            dtype: DType::F32,
            shape,
        }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype.name(), self.shape)
    }
}

/// `f32[B, 64]`, with the model's own name for the batch dimension.
pub fn type_text(ty: &TensorType, batch: &str) -> String {
    format!("{}{}", ty.dtype.name(), shape_text(&ty.shape, batch))
}

pub fn shape_text(shape: &Shape, batch: &str) -> String {
    let dims: Vec<String> = shape
        .dims()
        .iter()
        .map(|d| match d {
            Dim::Batch => batch.to_string(),
            Dim::Fixed(n) => n.to_string(),
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

/// Elements per sample: the product of the fixed dimensions.
pub fn per_sample(shape: &Shape) -> usize {
    shape
        .dims()
        .iter()
        .map(|d| match d {
            Dim::Batch => 1,
            Dim::Fixed(n) => *n,
        })
        .fold(1usize, usize::saturating_mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        let bn = Shape(vec![Dim::Batch, Dim::Fixed(4)]);
        assert_eq!(bn.broadcast(&Shape::fixed(&[4])), Some(bn.clone()));
        assert_eq!(bn.broadcast(&Shape::scalar()), Some(bn.clone()));
        assert_eq!(
            bn.broadcast(&Shape(vec![Dim::Batch, Dim::Fixed(1)])),
            Some(bn.clone())
        );
        assert_eq!(bn.broadcast(&Shape::fixed(&[3])), None);
        assert!(Shape::fixed(&[4]).broadcasts_to(&bn));
        assert!(!bn.broadcasts_to(&Shape::fixed(&[4])));
    }

    #[test]
    fn reshape_keeps_the_batch_leading() {
        let s = |dims: &[Dim]| Shape(dims.to_vec());
        use Dim::{Batch as B, Fixed as F};
        assert!(reshape_rule(&s(&[B, F(7), F(7), F(64)]), &s(&[B, F(3136)])).is_ok());
        assert!(reshape_rule(&s(&[B, F(784)]), &s(&[B, F(28), F(28), F(1)])).is_ok());
        assert!(reshape_rule(&Shape::fixed(&[2, 3]), &Shape::fixed(&[6])).is_ok());
        assert!(reshape_rule(&Shape::fixed(&[1]), &Shape::scalar()).is_ok());
        assert!(reshape_rule(&Shape::fixed(&[2, 3]), &Shape::fixed(&[5])).is_err());
        assert!(reshape_rule(&s(&[B, F(4)]), &Shape::fixed(&[4])).is_err());
        assert!(reshape_rule(&s(&[F(4), B]), &s(&[F(4), B])).is_err());
        assert!(reshape_rule(&s(&[B, F(4)]), &s(&[F(2), B, F(2)])).is_err());
        assert!(reshape_rule(&s(&[B, F(2), F(3)]), &s(&[B, F(6)])).is_ok());
    }
}
