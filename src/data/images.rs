//! Image data for the Biased-MNIST protocol (docs/design.md, section 6): the shipped 5,000 MNIST digits,
//! the IDX format of the full MNIST and Fashion-MNIST files, and the colouring that biases them. Every
//! digit's background is painted with one of 10 fixed colours; in training the colour is the digit's own
//! with probability `rho` and uniform over the 10 otherwise, in the unbiased test it is uniform.
//!
//! Here `y` is the class (10 values) and `s` the background colour (10 values). In the biased training set
//! colour predicts the class with probability `rho`; a network that learns colour fails the unbiased test.

use super::{split, Dataset, Description, Prepared};
use crate::error::{Error, Result};
use crate::rng::{rng, Stream};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where Debian's `dataset-fashion-mnist` package puts the Fashion-MNIST files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The image datasets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageDataset {
    /// Biased-MNIST: the shipped 5,000 digits (4,000 / 1,000), or full MNIST from `mnist_dir`.
    BiasedMnist,
    /// Colour-biased Fashion-MNIST (70,000 images) from `mnist_dir` or Debian's `dataset-fashion-mnist`.
    BiasedFashionMnist,
}

named_choices!(ImageDataset, Dataset, {
    BiasedMnist => "biased-mnist",
    BiasedFashionMnist => "biased-fashion-mnist",
});

/// Which images and how they are coloured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    /// The dataset.
    pub dataset: ImageDataset,
    /// Probability that a training image carries its own class's colour (else uniform).
    pub rho: f64,
    /// Directory of the four IDX files (MNIST layout); default: the shipped digits, resp. Debian's
    /// Fashion-MNIST directory.
    pub mnist_dir: Option<PathBuf>,
    /// Use a class-stratified subsample of this many training images.
    pub train_size: Option<usize>,
    /// Seed of split, subsample and colours.
    pub seed: u64,
    /// Images handed over in memory (the Python package), named for reports: they cannot be read again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_memory: Option<String>,
}

impl ImageSpec {
    /// The shipped digits (or Debian's Fashion-MNIST) at colour bias `rho`.
    pub fn new(dataset: ImageDataset, rho: f64, seed: u64) -> Self {
        ImageSpec { dataset, rho, mnist_dir: None, train_size: None, seed, in_memory: None }
    }
}

/// Names of the 10 background colours of [`COLOURS`].
pub const COLOUR_NAMES: [&str; 10] =
    ["crimson", "green", "blue", "orange", "purple", "turquoise", "gold", "brown", "pink", "grey"];

const MNIST_5K: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist_5k.csv.gz"));

/// Greyscale images with class labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// Pixels 0-255, image after image, row-major.
    pub pixels: Vec<u8>,
    /// Class of each image.
    pub labels: Vec<u8>,
}

impl Images {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

fn idx_error(source: &str, reason: impl Into<String>) -> Error {
    Error::Idx { path: source.to_string(), reason: reason.into() }
}

/// Parses an IDX file of unsigned bytes (magic `0x00 0x00 0x08 ndim`, then `ndim` big-endian sizes, then the
/// data); returns the sizes and the data. Wrong magic, another element type, or a length that disagrees with
/// the sizes is an error naming the file and what was expected.
pub fn parse_idx<'a>(bytes: &'a [u8], source: &str) -> Result<(Vec<usize>, &'a [u8])> {
    if bytes.len() < 4 {
        return Err(idx_error(source, format!("{} bytes: too short for an IDX header", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(idx_error(source, "not an IDX file (the magic number must start with two zero bytes)"));
    }
    if bytes[2] != 0x08 {
        return Err(idx_error(
            source,
            format!("element type 0x{:02x}; only unsigned bytes (0x08) are supported", bytes[2]),
        ));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if ndim == 0 || bytes.len() < header {
        return Err(idx_error(
            source,
            format!("truncated header: {ndim} dimension(s) need {header} bytes, the file has {}", bytes.len()),
        ));
    }
    let dims: Vec<usize> =
        (0..ndim).map(|d| u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().unwrap()) as usize).collect();
    let expected = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let data = &bytes[header..];
    match expected {
        Some(e) if e == data.len() => Ok((dims, data)),
        Some(e) => Err(idx_error(
            source,
            format!(
                "sizes {dims:?} need {e} data bytes, the file has {}{}",
                data.len(),
                if data.len() < e { " (truncated)" } else { " (trailing bytes)" }
            ),
        )),
        None => Err(idx_error(source, format!("sizes {dims:?} overflow"))),
    }
}

/// The bytes of a file, gunzipped when its name ends in `.gz`.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let raw = std::fs::read(path).map_err(io)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(io)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Reads an IDX image file and its label file (same number of items).
pub fn read_idx_pair(images: &Path, labels: &Path) -> Result<Images> {
    let (ib, lb) = (read_maybe_gz(images)?, read_maybe_gz(labels)?);
    let (is, ls) = (images.display().to_string(), labels.display().to_string());
    let (idims, pixels) = parse_idx(&ib, &is)?;
    let (ldims, labs) = parse_idx(&lb, &ls)?;
    if idims.len() != 3 {
        return Err(idx_error(&is, format!("{} dimension(s); images need 3 (count, rows, columns)", idims.len())));
    }
    if ldims.len() != 1 || ldims[0] != idims[0] {
        return Err(idx_error(&ls, format!("sizes {ldims:?} do not match {} images", idims[0])));
    }
    Ok(Images { rows: idims[1], cols: idims[2], pixels: pixels.to_vec(), labels: labs.to_vec() })
}

/// The four standard files of a directory (`train-images-idx3-ubyte[.gz]` and friends): (train, test).
pub fn read_mnist_dir(dir: &Path) -> Result<(Images, Images)> {
    let find = |stem: &str| -> Result<std::path::PathBuf> {
        for name in [stem.to_string(), format!("{stem}.gz")] {
            let p = dir.join(name);
            if p.exists() {
                return Ok(p);
            }
        }
        Err(idx_error(
            &dir.display().to_string(),
            format!("no {stem}[.gz]: the directory needs the four MNIST-format IDX files (for Fashion-MNIST, Debian's package dataset-fashion-mnist installs them; `dpkg -L dataset-fashion-mnist` shows where)"),
        ))
    };
    Ok((
        read_idx_pair(&find("train-images-idx3-ubyte")?, &find("train-labels-idx1-ubyte")?)?,
        read_idx_pair(&find("t10k-images-idx3-ubyte")?, &find("t10k-labels-idx1-ubyte")?)?,
    ))
}

/// The shipped 5,000 MNIST digits (500 per class; `data/mnist_5k.csv.gz`: 784 pixels then the label).
pub fn shipped_mnist_5k() -> Result<Images> {
    let source = "data/mnist_5k.csv.gz (built in)";
    let mut text = String::new();
    flate2::read::GzDecoder::new(MNIST_5K).read_to_string(&mut text).map_err(|e| idx_error(source, e.to_string()))?;
    let (mut pixels, mut labels) = (Vec::with_capacity(5000 * 784), Vec::with_capacity(5000));
    for (i, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != 785 {
            return Err(idx_error(source, format!("line {}: {} fields, expected 785", i + 1, cells.len())));
        }
        for c in &cells {
            let v: u8 =
                c.trim().parse().map_err(|_| idx_error(source, format!("line {}: '{c}' is not a byte", i + 1)))?;
            pixels.push(v);
        }
        labels.push(pixels.pop().unwrap());
    }
    Ok(Images { rows: 28, cols: 28, pixels, labels })
}

/// The 10 background colours (RGB), one per class in the biased training set.
pub const COLOURS: [[u8; 3]; 10] = [
    [220, 20, 60],
    [0, 128, 0],
    [0, 0, 255],
    [255, 140, 0],
    [128, 0, 128],
    [0, 206, 209],
    [255, 215, 0],
    [139, 69, 19],
    [255, 105, 180],
    [128, 128, 128],
];

/// Background colour of each image in a biased split: the label's own with probability `rho`, uniform over
/// the 10 otherwise (so an image carries its own colour with probability `rho + (1 - rho) / 10`).
pub fn biased_colours<R: Rng>(labels: &[u8], rho: f64, rng: &mut R) -> Result<Vec<u8>> {
    crate::schema::check::rho(&vec![rho])?;
    Ok(labels.iter().map(|&y| if rng.random::<f64>() < rho { y % 10 } else { rng.random_range(0..10u8) }).collect())
}

/// Uniform colours for an unbiased split.
pub fn unbiased_colours<R: Rng>(n: usize, rng: &mut R) -> Vec<u8> {
    (0..n).map(|_| rng.random_range(0..10u8)).collect()
}

fn subset(images: &Images, idx: &[usize]) -> Images {
    let size = images.rows * images.cols;
    let mut pixels = Vec::with_capacity(idx.len() * size);
    for &i in idx {
        pixels.extend_from_slice(&images.pixels[i * size..(i + 1) * size]);
    }
    Images { rows: images.rows, cols: images.cols, pixels, labels: idx.iter().map(|&i| images.labels[i]).collect() }
}

/// Coloured images as a [`Dataset`]: `n x 3 x rows x cols` in [0, 1], `y` the class, `s` the colour.
fn coloured(images: &Images, colours: Vec<u8>) -> Dataset {
    Dataset {
        x: colourise(images, &colours).into(),
        n: images.len(),
        d: 3 * images.rows * images.cols,
        shape: vec![3, images.rows, images.cols],
        y: images.labels.clone(),
        s: colours.into_iter().map(u32::from).collect(),
        n_groups: 10,
        n_classes: 10,
        w: None,
        t: None,
    }
}

/// Images off their class's colour.
pub fn off_colour(set: &Dataset) -> usize {
    set.y.iter().zip(&set.s).filter(|(&y, &s)| y as u32 != s).count()
}

/// Loads and colours the images of `spec`: the biased training set, the same images recoloured uniformly
/// (where the colour probes learn), the unbiased test set and a test set coloured like the training set.
pub fn prepare(spec: &ImageSpec) -> Result<Prepared> {
    if let Some(name) = &spec.in_memory {
        return Err(Error::DataMoved {
            path: name.into(),
            reason: "the model was trained on images held in memory (Python), which cannot be read again: \
                     evaluate it on held-out images from Python"
                .into(),
        });
    }
    crate::schema::check::rho(&vec![spec.rho])?;
    let (train, test) = match (spec.dataset, &spec.mnist_dir) {
        (_, Some(dir)) => read_mnist_dir(dir)?,
        (ImageDataset::BiasedMnist, None) => {
            let all = shipped_mnist_5k()?;
            let (test, train) = split::by_class(&all.labels, |n| n / 5, &mut rng(spec.seed, Stream::Split));
            (subset(&all, &train), subset(&all, &test))
        }
        (ImageDataset::BiasedFashionMnist, None) => {
            let dir = Path::new(FASHION_MNIST_DIR);
            if !dir.exists() {
                return Err(Error::Idx {
                    path: FASHION_MNIST_DIR.into(),
                    reason: "Fashion-MNIST is not installed: `apt-get install dataset-fashion-mnist` (Debian) puts \
                             it here, or give a directory holding train-images-idx3-ubyte[.gz] and friends \
                             (https://github.com/zalandoresearch/fashion-mnist)"
                        .into(),
                });
            }
            read_mnist_dir(dir)?
        }
    };
    for (set, what) in [(&train, "training"), (&test, "test")] {
        if let Some(&bad) = set.labels.iter().find(|&&l| l > 9) {
            return Err(Error::Idx {
                path: what.into(),
                reason: format!("label {bad}: the colouring needs classes 0-9"),
            });
        }
        if set.is_empty() {
            return Err(Error::Idx { path: what.into(), reason: "no images".into() });
        }
    }
    let train = match spec.train_size {
        Some(n) if n < train.len() => {
            crate::schema::check::train_size(&Some(n))?;
            let total = train.len();
            let (idx, _) =
                split::by_class(&train.labels, |c| (c * n).div_ceil(total), &mut rng(spec.seed, Stream::Subsample));
            subset(&train, &idx)
        }
        _ => train,
    };
    let stream = |s| rng(spec.seed, s);
    let train_colours = biased_colours(&train.labels, spec.rho, &mut stream(Stream::ColourTrain))?;
    let probe_colours = unbiased_colours(train.len(), &mut stream(Stream::ColourProbe));
    let unbiased = unbiased_colours(test.len(), &mut stream(Stream::ColourUnbiased));
    let biased = biased_colours(&test.labels, spec.rho, &mut stream(Stream::ColourBiased))?;
    Ok(Prepared {
        probe_train: Some(coloured(&train, probe_colours)),
        probe_test: None,
        certify: None,
        train: coloured(&train, train_colours),
        val: None,
        test: coloured(&test, unbiased),
        test_biased: Some(coloured(&test, biased)),
        encoding: None,
        n_dropped: 0,
        n_left_out: 0,
        description: Description {
            dataset: spec.dataset.name().to_string(),
            sensitive: "colour".into(),
            groups: COLOUR_NAMES.iter().map(|c| c.to_string()).collect(),
        },
    })
}

/// Images handed over in memory as a training set: `x` is `n x 3 x h x w` in [0, 1] (`shape` = `[3, h, w]`),
/// `y` the class indices (`n_classes` of them), `s` the group indices of `groups`. There is no test split:
/// the caller evaluates on images of its own.
pub fn prepare_memory(
    x: Vec<f32>,
    shape: [usize; 3],
    y: Vec<u8>,
    s: Vec<u32>,
    n_classes: usize,
    groups: Vec<String>,
    name: &str,
) -> Result<Prepared> {
    let d: usize = shape.iter().product();
    let n = y.len();
    let bad = |reason: String| Error::Values { what: "X".into(), reason };
    if shape[0] != 3 || d == 0 || x.len() != n * d || s.len() != n {
        return Err(Error::Shape {
            what: "X".into(),
            expected: format!("{n} images of 3 x h x w, with as many labels and groups"),
            got: format!("{} values of images {shape:?} and {} groups", x.len(), s.len()),
        });
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(bad(format!("value {} at flat index {i} (image {}) is not a number", x[i], i / d)));
    }
    if x.iter().any(|v| !(0.0..=1.0).contains(v)) {
        let hi = x.iter().fold(0f32, |a, &b| a.max(b));
        let hint = if hi > 1.0 && hi <= 255.0 { ": divide by 255" } else { "" };
        return Err(bad(format!("values leave [0, 1] (largest {hi}); the model reads pixels in [0, 1]{hint}")));
    }
    let n_groups = groups.len();
    let train = Dataset { x: x.into(), n, d, shape: shape.to_vec(), y, s, n_groups, n_classes, w: None, t: None };
    let empty = train.subset(&[]);
    Ok(Prepared {
        probe_train: None,
        probe_test: None,
        certify: None,
        train,
        val: None,
        test: empty,
        test_biased: None,
        encoding: None,
        n_dropped: 0,
        n_left_out: 0,
        description: Description { dataset: name.into(), sensitive: "sensitive".into(), groups },
    })
}

/// Paints the backgrounds: each pixel of intensity `v` becomes `v * white + (1 - v) * colour`, channels
/// first, in [0, 1]: `n x 3 x rows x cols`.
pub fn colourise(images: &Images, colours: &[u8]) -> Vec<f32> {
    let hw = images.rows * images.cols;
    let mut out = vec![0f32; images.len() * 3 * hw];
    for (i, &c) in colours.iter().enumerate() {
        let rgb = COLOURS[c as usize];
        for p in 0..hw {
            let v = images.pixels[i * hw + p] as f32 / 255.0;
            for ch in 0..3 {
                out[(i * 3 + ch) * hw + p] = v + (1.0 - v) * rgb[ch] as f32 / 255.0;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn idx(magic3: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, magic3, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn idx_round_trip_plain_and_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|v| v as u8).collect();
        std::fs::write(dir.path().join("i"), idx(8, &[2, 3, 4], &pixels)).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &idx(8, &[2], &[7, 3])).unwrap();
        std::fs::write(dir.path().join("l.gz"), gz.finish().unwrap()).unwrap();
        let im = read_idx_pair(&dir.path().join("i"), &dir.path().join("l.gz")).unwrap();
        assert_eq!((im.rows, im.cols, im.len()), (3, 4, 2));
        assert_eq!(im.pixels, pixels);
        assert_eq!(im.labels, vec![7, 3]);
    }

    #[test]
    fn truncated_and_malformed_idx_files_are_clear_errors() {
        let e = parse_idx(&idx(8, &[2, 3, 4], &[0; 23]), "x.idx").unwrap_err().to_string();
        assert!(e.contains("x.idx: sizes [2, 3, 4] need 24 data bytes, the file has 23 (truncated)"), "{e}");
        let e = parse_idx(&idx(8, &[2], &[0; 3]), "x").unwrap_err().to_string();
        assert!(e.contains("trailing bytes"), "{e}");
        let e = parse_idx(&[1, 2, 8, 1], "x").unwrap_err().to_string();
        assert!(e.contains("not an IDX file"), "{e}");
        let e = parse_idx(&idx(0x0d, &[1], &[0; 4]), "x").unwrap_err().to_string();
        assert!(e.contains("element type 0x0d"), "{e}");
        let e = parse_idx(&[0, 0, 8, 3, 0, 0], "x").unwrap_err().to_string();
        assert!(e.contains("truncated header"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read_mnist_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("dataset-fashion-mnist"), "{e}");
    }

    #[test]
    fn shipped_digits_are_500_per_class() {
        let im = shipped_mnist_5k().unwrap();
        assert_eq!((im.len(), im.rows, im.cols), (5000, 28, 28));
        for c in 0..10u8 {
            assert_eq!(im.labels.iter().filter(|&&l| l == c).count(), 500);
        }
    }

    #[test]
    fn colour_statistics_match_rho() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let labels: Vec<u8> = (0..20_000).map(|i| (i % 10) as u8).collect();
        for rho in [0.9, 0.99, 0.999] {
            let colours = biased_colours(&labels, rho, &mut rng).unwrap();
            let own = colours.iter().zip(&labels).filter(|(c, l)| c == l).count() as f64 / 20_000.0;
            let expected = rho + (1.0 - rho) / 10.0;
            let se = (expected * (1.0 - expected) / 20_000.0).sqrt();
            assert!((own - expected).abs() < 4.0 * se + 1e-9, "rho {rho}: {own} vs {expected}");
        }
        let colours = unbiased_colours(20_000, &mut rng);
        let own = colours.iter().zip(&labels).filter(|(c, l)| c == l).count() as f64 / 20_000.0;
        assert!((own - 0.1).abs() < 4.0 * (0.09f64 / 20_000.0).sqrt());
        assert!(biased_colours(&labels, 1.5, &mut rng).is_err());
    }

    #[test]
    fn shipped_split_is_stratified_and_colours_follow_rho() {
        let spec = ImageSpec::new(ImageDataset::BiasedMnist, 0.95, 3);
        let d = prepare(&spec).unwrap();
        let (biased, probe) = (d.test_biased.as_ref().unwrap(), d.probe_train.as_ref().unwrap());
        assert_eq!((d.train.n, d.test.n), (4000, 1000));
        assert_eq!(d.train.shape, vec![3, 28, 28]);
        for c in 0..10u8 {
            assert_eq!(d.train.y.iter().filter(|&&y| y == c).count(), 400);
            assert_eq!(biased.y.iter().filter(|&&y| y == c).count(), 100);
        }
        // Off-colour share: (1 - rho) * 9/10 = 4.5% in expectation (sd about 0.33% on 4,000 images).
        let off = off_colour(&d.train) as f64 / 4000.0;
        assert!((off - 0.045).abs() < 0.015, "{off}");
        let off = off_colour(&d.test) as f64 / 1000.0;
        assert!((off - 0.9).abs() < 0.05, "{off}");
        // The probes' copy of the training images has the same digits under other colours.
        assert_eq!(probe.y, d.train.y);
        let sub = prepare(&ImageSpec { train_size: Some(500), ..spec }).unwrap();
        assert_eq!(sub.train.n, 500);
        assert!((0..10u8).all(|c| sub.train.y.iter().filter(|&&y| y == c).count() == 50));
    }

    #[test]
    fn colourise_paints_the_background_and_keeps_the_digit_white() {
        let im = Images { rows: 1, cols: 2, pixels: vec![0, 255], labels: vec![0] };
        let x = colourise(&im, &[2]);
        // Background pixel: blue (0, 0, 1); digit pixel: white.
        assert_eq!(x, vec![0.0, 1.0, 0.0, 1.0, 1.0, 1.0]);
    }
}
