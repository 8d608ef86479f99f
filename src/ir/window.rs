//! The sliding window of convolutions and pooling, part of what `Op::Unfold`, `Op::Fold`,
//! `Op::Pool` and `Op::PoolGrad` mean. Tensors are channels-last as in Keras: `[B, S.., C]` with
//! one or two spatial axes `S`. Output sizes follow Keras's (TensorFlow's) formulas, including
//! how `"same"` padding splits between the two sides (the odd element goes after).
//!
//! [`Plane`] is the geometry flattened to two spatial axes (a 1-D window is a 2-D one of height
//! 1), which is how both the interpreter and the native kernels walk it.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    /// The window's extent along each spatial axis (1 or 2 of them).
    pub size: Vec<usize>,
    pub strides: Vec<usize>,
    /// The step between the window's taps (Keras's `dilation_rate`).
    pub dilation: Vec<usize>,
    /// Padding (before, after) each spatial axis: zeros for `unfold`, nothing for pooling (a
    /// padded position is never the maximum and is not counted in an average).
    pub padding: Vec<(usize, usize)>,
}

/// How a layer pads its input (Keras's `padding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// None: the window stays inside the input.
    Valid,
    /// Enough that the output has `ceil(input / stride)` positions.
    Same,
}

impl Padding {
    pub fn parse(text: &str) -> Option<Padding> {
        match text {
            "valid" => Some(Padding::Valid),
            "same" => Some(Padding::Same),
            _ => None,
        }
    }
}

impl Window {
    /// The window of a layer over `input` (the spatial sizes), padded as `padding` says.
    pub fn new(
        input: &[usize],
        size: &[usize],
        strides: &[usize],
        dilation: &[usize],
        padding: Padding,
    ) -> Window {
        let padding = (0..input.len())
            .map(|axis| match padding {
                Padding::Valid => (0, 0),
                Padding::Same => {
                    let span = dilation[axis] * (size[axis] - 1) + 1;
                    let output = input[axis].div_ceil(strides[axis]);
                    let total = ((output - 1) * strides[axis] + span).saturating_sub(input[axis]);
                    (total / 2, total - total / 2)
                }
            })
            .collect();
        Window {
            size: size.to_vec(),
            strides: strides.to_vec(),
            dilation: dilation.to_vec(),
            padding,
        }
    }

    /// The number of spatial axes.
    pub fn rank(&self) -> usize {
        self.size.len()
    }

    /// The number of taps (elements of one window per channel).
    pub fn taps(&self) -> usize {
        self.size.iter().product()
    }

    /// How far one window reaches along `axis`, dilation included.
    pub fn span(&self, axis: usize) -> usize {
        self.dilation[axis] * (self.size[axis] - 1) + 1
    }

    /// The output length along `axis` for an input of `input` elements, or `None` when the
    /// window does not fit even once.
    pub fn output_len(&self, axis: usize, input: usize) -> Option<usize> {
        let (before, after) = self.padding[axis];
        let padded = input + before + after;
        let span = self.span(axis);
        (padded >= span).then(|| (padded - span) / self.strides[axis] + 1)
    }

    /// Whether every list has one entry per spatial axis and every size, stride and dilation is
    /// positive.
    pub fn is_well_formed(&self) -> bool {
        let rank = self.rank();
        (1..=2).contains(&rank)
            && self.strides.len() == rank
            && self.dilation.len() == rank
            && self.padding.len() == rank
            && [&self.size, &self.strides, &self.dilation]
                .iter()
                .all(|xs| xs.iter().all(|&x| x > 0))
    }

    /// The geometry over a `[batch, spatial.., channels]` input, as two spatial axes.
    pub fn plane(&self, batch: usize, spatial: &[usize], channels: usize) -> Plane {
        let two = |xs: &[usize], one: usize| -> [usize; 2] {
            match xs {
                [w] => [one, *w],
                [h, w] => [*h, *w],
                _ => [one, one],
            }
        };
        let input = two(spatial, 1);
        let output: Vec<usize> = (0..self.rank())
            .map(|axis| self.output_len(axis, spatial[axis]).unwrap_or(0))
            .collect();
        let (before, _): (Vec<usize>, Vec<usize>) = self.padding.iter().copied().unzip();
        Plane {
            batch,
            input,
            channels,
            output: two(&output, 1),
            size: two(&self.size, 1),
            strides: two(&self.strides, 1),
            dilation: two(&self.dilation, 1),
            pad_before: two(&before, 0),
        }
    }
}

impl fmt::Display for Window {
    /// `3x3, strides 1x1, dilation 1x1, padding 0+0x0+0` (defaults left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = |xs: &[usize]| {
            xs.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("x")
        };
        write!(f, "{}", by(&self.size))?;
        if self.strides.iter().any(|&s| s != 1) {
            write!(f, ", strides {}", by(&self.strides))?;
        }
        if self.dilation.iter().any(|&d| d != 1) {
            write!(f, ", dilation {}", by(&self.dilation))?;
        }
        if self.padding.iter().any(|&(b, a)| b + a > 0) {
            let pads: Vec<String> = self
                .padding
                .iter()
                .map(|(b, a)| format!("{b}+{a}"))
                .collect();
            write!(f, ", padding {}", pads.join("x"))?;
        }
        Ok(())
    }
}

/// A window's geometry over one input, flattened to two spatial axes (height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plane {
    pub batch: usize,
    pub input: [usize; 2],
    pub channels: usize,
    pub output: [usize; 2],
    pub size: [usize; 2],
    pub strides: [usize; 2],
    pub dilation: [usize; 2],
    pub pad_before: [usize; 2],
}

impl Plane {
    /// The input position tap `(ky, kx)` of output position `(oy, ox)` reads, or `None` where it
    /// falls in the padding.
    pub fn source(
        &self,
        (oy, ox): (usize, usize),
        (ky, kx): (usize, usize),
    ) -> Option<(usize, usize)> {
        let y = (oy * self.strides[0] + ky * self.dilation[0]).checked_sub(self.pad_before[0])?;
        let x = (ox * self.strides[1] + kx * self.dilation[1]).checked_sub(self.pad_before[1])?;
        (y < self.input[0] && x < self.input[1]).then_some((y, x))
    }

    /// Elements of one input sample, of one output sample of pooling, and of one unfolded
    /// output sample.
    pub fn input_len(&self) -> usize {
        self.input[0] * self.input[1] * self.channels
    }

    pub fn pooled_len(&self) -> usize {
        self.output[0] * self.output[1] * self.channels
    }

    pub fn unfolded_len(&self) -> usize {
        self.output[0] * self.output[1] * self.taps() * self.channels
    }

    pub fn taps(&self) -> usize {
        self.size[0] * self.size[1]
    }
}
