#!/bin/sh
# bench/gpu/exp2/gen.sh: compile layouts.cu into one PTX per layout (build
# machine, needs nvcc). NOT kvq output; see layouts.cu and README.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rm -f "$here"/*.ptx
# name EPI SPLIT ITEMS LITEMS EXACT BARE [PF]
while read -r name epi split items litems exact bare pf; do
  pf=${pf:-0}
  f=$here/$name.ptx
  { echo "// exp2: EPI=$epi SPLIT=$split ITEMS=$items LITEMS=$litems EXACT=$exact BARE=$bare PF=$pf"
    nvcc -arch=sm_90 -ptx -O3 -DEPI="$epi" -DSPLIT="$split" -DITEMS="$items" \
      -DLITEMS="$litems" -DEXACT="$exact" -DBARE="$bare" -DPF="$pf" "$here/layouts.cu" -o -
  } > "$f"
  echo "wrote $f"
done <<LIST
a_e16 16 0 1 2 0 0
ax_e16_exact 16 0 1 2 1 0
b_e8 8 0 1 2 0 0
bx_e8_exact 8 0 1 2 1 0
bb_e8_bare 8 0 1 2 0 1
bbx_e8_exact_bare 8 0 1 2 1 1
ab_e16_bare 16 0 1 2 0 1
pf0_e8_exact_bare 8 0 1 2 1 1 0
pf1_e8_exact_bare 8 0 1 2 1 1 1
pf2_e8_exact_bare 8 0 1 2 1 1 2
f_e4_exact_bare 4 0 1 2 1 1
g_e8_exact_bare10 8 0 1 2 1 2
h_e8_plain_bare10 8 0 1 2 0 2
LIST
