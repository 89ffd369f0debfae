"""Helpers for the slice engines' tests: segment-anything networks with random weights at a
small input size, stand-in networks, and volumes with known objects."""

from functools import partial

import numpy as np


def small_sam(image_size: int = 128, seed: int = 0):
    """segment-anything's ``Sam`` with the ViT-B encoder (depth 12, width 768, 12 heads,
    global attention in blocks 2/5/8/11) and the released prompt encoder and mask decoder,
    random weights, for a square input of ``image_size`` pixels instead of 1024: the same
    code on 1/64 of the pixels (the package builds 1024 only; its modules take the size)."""
    import torch

    from slicerfm_backend.engines.slicewise.sam_network import modules

    _, modeling = modules()
    torch.manual_seed(seed)
    grid = image_size // 16
    model = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            depth=12, embed_dim=768, img_size=image_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=12, patch_size=16,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=[2, 5, 8, 11], window_size=14,
            out_chans=256),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=256, image_embedding_size=(grid, grid), input_image_size=(image_size, image_size),
            mask_in_chans=16),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
            transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    )
    # The encoder's position embedding starts at zero; give it values so that it matters.
    with torch.no_grad():
        model.image_encoder.pos_embed.normal_(0, 0.02)
    return model.eval()
