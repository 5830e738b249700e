//! The buyer's barcode: a QR code (ISO/IEC 18004) of the sale's EIP-681 URI, as PNG or SVG.

use crate::warehouse::WarehouseError;
use alloy_primitives::Address;
use qrcode::{Color, QrCode};

/// Pixels per QR module in PNG output.
const SCALE: usize = 8;
/// Quiet zone around the code, modules (the standard asks for 4).
const QUIET: usize = 4;

/// The QR code of `barcode` as an SVG document.
pub fn svg(barcode: &Barcode) -> crate::Result<String> {
    let code = QrCode::new(barcode.uri().as_bytes())?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(256, 256).quiet_zone(true).build())
}

/// The QR code of `barcode` as an 8-bit grayscale PNG.
pub fn png(barcode: &Barcode) -> crate::Result<Vec<u8>> {
    let code = QrCode::new(barcode.uri().as_bytes())?;
    let width = code.width();
    let colors = code.to_colors();
    let side = (width + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for y in 0..width {
        for x in 0..width {
            if colors[y * width + x] == Color::Dark {
                for dy in 0..SCALE {
                    let row = (y + QUIET) * SCALE + dy;
                    let start = row * side + (x + QUIET) * SCALE;
                    pixels[start..start + SCALE].fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
    }
    Ok(out)
}

/// What a barcode says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Barcode {
    /// Chain id.
    pub chain_id: u64,
    /// Sale contract.
    pub sale: Address,
    /// Buyer.
    pub buyer: Address,
}

impl Barcode {
    /// The EIP-681 URI.
    pub fn uri(&self) -> String {
        format!("ethereum:{}@{}/verifyOwnership?address={}", self.sale, self.chain_id, self.buyer)
    }

    /// Parses the EIP-681 URI.
    pub fn parse(uri: &str) -> Result<Self, WarehouseError> {
        let bad = || {
            WarehouseError::BadRequest(format!("not a Fogchain sale barcode: {uri:?} (expected ethereum:<sale>@<chainId>/verifyOwnership?address=<buyer>)"))
        };
        let rest = uri.trim().strip_prefix("ethereum:").ok_or_else(bad)?;
        let (target, rest) = rest.split_once('@').ok_or_else(bad)?;
        let (chain, rest) = rest.split_once("/verifyOwnership?address=").ok_or_else(bad)?;
        Ok(Self {
            sale: target.parse().map_err(|_| bad())?,
            chain_id: chain.parse().map_err(|_| bad())?,
            buyer: rest.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_and_svg() {
        let b = Barcode { chain_id: 1337, sale: Address::repeat_byte(1), buyer: Address::repeat_byte(2) };
        let p = png(&b).unwrap();
        assert_eq!(&p[1..4], b"PNG");
        assert!(svg(&b).unwrap().contains("<svg"));
    }

    #[test]
    fn barcode_round_trip() {
        let b =
            Barcode { chain_id: 1337, sale: Address::repeat_byte(0xaa), buyer: Address::repeat_byte(0xbb) };
        assert_eq!(Barcode::parse(&b.uri()).unwrap(), b);
        assert!(Barcode::parse("ethereum:0x12@1/pay").is_err());
    }
}
