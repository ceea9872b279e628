kvq.layer @model.layers.3 prefix("model.layers.3") cache(fp8)
    checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.07 : f32>)
    {checkpoint_tensors = {q = "model.layers.3.self_attn.q_scale",
                           k = "model.layers.3.self_attn.k_scale",
                           v = "model.layers.3.self_attn.v_scale",
                           prob = "model.layers.3.self_attn.prob_scale"}}
