#pragma once
// Generated image-caption pairs for tests: a shape of one colour on a
// background of another, captioned "a red circle on a blue background".
// Real PNG files in a real folder, with a CSV that names them.
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "clip/image.hpp"

namespace docflow::testing {

struct Colour {
  const char* name;
  std::uint8_t r, g, b;
};
inline const Colour kColours[] = {{"red", 220, 30, 30},  {"green", 30, 180, 60}, {"blue", 40, 60, 220},
                                  {"yellow", 230, 220, 40}, {"black", 15, 15, 15}, {"white", 245, 245, 245}};

inline clip::Image shape_image(int size, const Colour& fg, const Colour& bg, bool circle, int jitter) {
  clip::Image img;
  img.width = img.height = size;
  img.rgb.resize(static_cast<std::size_t>(size) * size * 3);
  const double c = size / 2.0 + jitter, radius = size * 0.3;
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const double dx = x - c, dy = y - c;
      const bool inside = circle ? dx * dx + dy * dy <= radius * radius : std::abs(dx) <= radius && std::abs(dy) <= radius;
      const Colour& col = inside ? fg : bg;
      std::uint8_t* p = &img.rgb[(static_cast<std::size_t>(y) * size + x) * 3];
      p[0] = col.r;
      p[1] = col.g;
      p[2] = col.b;
    }
  return img;
}

// Writes DIR/images/NAME-i.png and DIR/NAME.csv (image, caption, label).
inline std::filesystem::path write_pairs(const std::filesystem::path& dir, const std::string& name, int count,
                                         unsigned seed, int size = 40) {
  std::filesystem::create_directories(dir / "images");
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> colour(0, 5), jitter(-3, 3), coin(0, 1);
  const std::filesystem::path csv = dir / (name + ".csv");
  std::ofstream out(csv);
  out << "image,caption,label\n";
  for (int i = 0; i < count; ++i) {
    const int f = colour(rng);
    int b = colour(rng);
    if (b == f) b = (b + 1) % 6;
    const bool circle = coin(rng) == 1;
    const std::string file = "images/" + name + "-" + std::to_string(i) + ".png";
    std::ofstream(dir / file, std::ios::binary) << clip::encode_png(shape_image(size, kColours[f], kColours[b], circle, jitter(rng)));
    out << file << ",\"a " << kColours[f].name << (circle ? " circle" : " square") << " on a " << kColours[b].name
        << " background\"," << kColours[f].name << "\n";
  }
  return csv;
}

}  // namespace docflow::testing
