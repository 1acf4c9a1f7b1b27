"""Running one prompt over many items: alloy.map / amap and the vendor batch APIs."""
