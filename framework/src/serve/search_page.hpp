#pragma once
// The search page served at /ui (search_page.cpp).
namespace docflow::serve {
extern const char* const kSearchPage;
}
