tree_sum() {
  (cd "$1" && {
    find . ! -path ./.ok \( -type f -printf 'f %m %s %p\0' -o -type l -printf 'l %p %l\0' \
      -o -printf '%y %m %p\0' \) | LC_ALL=C sort -z
    find . ! -path ./.ok -type f -exec sha256sum {} + | LC_ALL=C sort
  } | sha256sum | cut -d' ' -f1)
}
