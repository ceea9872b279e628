"kvq.layer"() <{sym_name = "generic", kv_cache_dtype = #kvq.kv_cache_dtype<fp8>, prefix = "model.layers.0", checkpoint_scales = #kvq.scales<k = 5.0e-2 : f32>}> : () -> ()
