kvq.layer @layer.all_clauses prefix("model.layers.0") cache(fp8_e5m2)
    calculate_kv_scales
    resolved(#kvq.resolved_scales<k = 1.0 runtime, v = 1.0 runtime,
                                  q = 1.0 default, prob = 1.0 default>)
    {checkpoint_tensors = {q = "model.layers.0.self_attn.q_scale"},
     note = "kept"}
