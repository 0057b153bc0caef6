// Backend tests run SX through the tier in crates/sx (feature `cranelift`).
