kvq.layer @layer.per_head prefix("model.layers.0") cache(fp8)
    resolved(#kvq.resolved_scales<k = [0.1, 0.2] checkpoint doubled,
                                  v = [0.3, 0.4] duplicated doubled,
                                  q = [0.5, 0.6] checkpoint,
                                  prob = 1.0 default, fnuz>)
kvq.layer @layer.per_head_bad cache(fp8)
    resolved(#kvq.resolved_scales<k = [0.1, -0.2] checkpoint, v = 1.0 checkpoint,
                                  q = [] default, prob = [1.0] default>)
