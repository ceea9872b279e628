kvq.layer @resolved_k_is_nan cache(fp8)
    resolved(#kvq.resolved_scales<k = 0x7FC00000 checkpoint, v = 1.0 checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)
