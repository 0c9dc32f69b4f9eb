"""The reference latent diffusion generator of Prakash et al. (2025), built from diffusers parts."""
