kvq.layer @layer.only_cache_dtype cache(fp8)
kvq.layer @layer.with_prefix prefix("model.layers.7") cache(fp8)
kvq.layer @layer.cache_auto cache(auto)
kvq.layer @layer.cache_int8 cache(int8)
kvq.layer @layer.calculate_kv_scales cache(fp8_e5m2) calculate_kv_scales
kvq.layer @layer.checkpoint_short_form cache(fp8_e4m3) checkpoint(<k = 0.05 : f32>)
