kvq.layer @layer_unknown_cache_dtype cache(fp4)
