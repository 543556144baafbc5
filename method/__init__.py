"""4D-fy: a 4D radiance field trained with hybrid score distillation sampling.

Layout: `encodings` (hash grid, HexPlane, spherical harmonics), `fields` (the 4D scene field),
`background`, `render` (rays, sampling, compositing), `cameras`, `guidance` (the diffusion priors),
`training` (Algorithm 1)."""

__version__ = "0.1.0"
